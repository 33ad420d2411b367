"""`mimkd-edge sweep`: teachers first, a grid of methods, and a rerun that retrains nothing."""

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error, tiny_table

from mimkd_edge.cli import main
from mimkd_edge.engine.sweep import expand, load_sweep
from mimkd_edge.recipe import dumps_toml

REFERENCE = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu"  # committed benchmarked runs


def _setup(tmp_path):
    (tmp_path / "teacher.toml").write_text(dumps_toml(tiny_table(name="t", model="conv4")))
    student = tiny_table(name="st", model="conv4_mp", method="kd",
                         teacher={"model": "conv4", "checkpoint": "out/t/model.safetensors"})
    (tmp_path / "student.toml").write_text(dumps_toml(student))
    (tmp_path / "sweep.toml").write_text(
        'name = "x"\nout = "out"\n\n[[stage]]\nrecipes = ["teacher.toml"]\n\n'
        '[[stage]]\nrecipes = ["student.toml"]\nseeds = [0, 1]\nset = ["train.epochs=1"]\n'
        '[stage.grid]\n"method.name" = ["none", "kd"]\n')
    return tmp_path / "sweep.toml"


def test_expand_names_and_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = expand(load_sweep(_setup(tmp_path)))
    assert [j.name for j in jobs] == ["t", "st-none-s0", "st-kd-s0", "st-none-s1", "st-kd-s1"]
    assert jobs[4].recipe.seed == 1 and jobs[4].recipe.method.name == "kd" and jobs[4].recipe.name == "st-kd-s1"


def test_sweep_runs_then_skips_finished(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _setup(tmp_path)
    first = CliRunner().invoke(main, ["sweep", str(sweep)])
    assert first.exit_code == 0, first.output
    assert "5 trained" in first.output
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*/summary.json")}
    assert len(stamps) == 5
    again = CliRunner().invoke(main, ["sweep", str(sweep)])
    assert again.exit_code == 0 and "0 trained, 5 already finished" in again.output
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*/summary.json")}


def test_bad_sweep_file_is_one_line(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\n[[stage]]\nrecipes = []\n')
    result = CliRunner().invoke(main, ["sweep", str(bad)])
    assert result.exit_code == 2 and "stage[0].recipes" in result.output


def test_sweep_exports_benches_and_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(dumps_toml(tiny_table(name="r", model="conv4")))
    (tmp_path / "sweep.toml").write_text('name = "x"\nout = "out"\n[[stage]]\nrecipes = ["r.toml"]\nseeds = [0, 1]\n')
    result = CliRunner().invoke(main, ["sweep", "sweep.toml", "--export", "--bench"])
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        assert (tmp_path / "out" / f"r-s{seed}" / "export" / "manifest.json").is_file()
        assert (tmp_path / "out" / f"r-s{seed}" / "bench.json").is_file()
    table = (tmp_path / "out" / "results.md").read_text()
    assert "Conv-4" in table and " ± " in table  # two seeds → mean ± std
    assert (tmp_path / "out" / "tradeoff.png").stat().st_size > 0
    again = CliRunner().invoke(main, ["sweep", "sweep.toml", "--export", "--bench"])
    assert again.exit_code == 0 and "skip export of r-s0" in again.output and "0 trained" in again.output


@pytest.mark.parametrize("section, key, value", [
    ("train", "batch_size", 3),  # e.g. a recipe default changed since the run finished
    ("train", "epochs", 2),  # the schedule lengthened since the run finished (tiny recipes train 1 epoch)
])
def test_finished_run_of_another_recipe_is_refused_not_skipped(tmp_path, monkeypatch, section, key, value):
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    only_teacher = tmp_path / "teacher_sweep.toml"
    only_teacher.write_text('name = "x"\nout = "out"\n\n[[stage]]\nrecipes = ["teacher.toml"]\n')
    assert CliRunner().invoke(main, ["sweep", str(only_teacher)]).exit_code == 0
    changed = tiny_table(name="t", model="conv4")
    assert changed[section][key] != value
    changed[section][key] = value
    (tmp_path / "teacher.toml").write_text(dumps_toml(changed))
    result = CliRunner().invoke(main, ["sweep", str(only_teacher)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "out/t" in result.output and f"{section}.{key}" in result.output


def test_expand_records_the_grid_setting_apart_from_method_and_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _setup(tmp_path)
    sweep.write_text(sweep.read_text() + '"train.lr" = [0.01, 0.05]\n')
    jobs = expand(load_sweep(sweep))
    assert jobs[1].name == "st-none-lr0.01-s0" and jobs[1].setting == "lr0.01"
    assert jobs[0].setting == ""  # the teacher stage has no grid



def test_shards_cover_every_run_exactly_once(tmp_path, monkeypatch):
    from mimkd_edge.engine.sweep import shard

    monkeypatch.chdir(tmp_path)
    jobs = expand(load_sweep(_setup(tmp_path)))
    for count in (1, 2, 3, 7):
        names = [j.name for i in range(count) for j in shard(jobs, i, count)]
        assert sorted(names) == sorted(j.name for j in jobs)


def test_two_shards_train_the_sweep_between_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = _setup(tmp_path)
    assert CliRunner().invoke(main, ["sweep", str(sweep), "--shard", "0/2"]).exit_code == 0  # t, none-s0, none-s1
    second = CliRunner().invoke(main, ["sweep", str(sweep), "--shard", "1/2"])  # kd-s0, kd-s1 (teacher done)
    assert second.exit_code == 0 and "2 trained" in second.output
    assert len(list((tmp_path / "out").glob("*/summary.json"))) == 5


def test_bad_shard_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--shard", "2/2"])
    assert result.exit_code != 0 and "--shard: expected I/N with 0 <= I < N" in result.output
    assert "Traceback" not in result.output


def test_the_sweep_file_says_what_to_export_and_measure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(dumps_toml(tiny_table(name="r", model="conv4")))
    (tmp_path / "sweep.toml").write_text(
        'name = "x"\nout = "out"\n[[stage]]\nrecipes = ["r.toml"]\n'
        '[export]\nopenvino = false\nint8 = false\nexporter = "torchscript"\n'
        '[bench]\nbackends = ["onnxruntime"]\nprecisions = ["fp32"]\nseconds = 0.05\n'
        f'[plot]\nreference = ["{REFERENCE}"]\nreference_label = ["the committed runs"]\n')
    result = CliRunner().invoke(main, ["sweep", "sweep.toml", "--export", "--bench"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "r" / "export" / "manifest.json").read_text())
    assert [a["name"] for a in manifest["artifacts"]] == ["onnx-fp32"] and manifest["exporter"] == "torchscript"
    assert "the committed runs" in (tmp_path / "out" / "tradeoff.md").read_text()
    rows = json.loads((tmp_path / "out" / "r" / "bench.json").read_text())["rows"]
    assert {(r["backend"], r["artifact"]) for r in rows} == {("onnxruntime", "onnx-fp32")}


def test_the_sweep_file_can_ask_for_an_ncnn_graph_alone(tmp_path, monkeypatch):
    pytest.importorskip("pnnx")
    pytest.importorskip("ncnn")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(dumps_toml(tiny_table(name="r", model="conv4")))
    (tmp_path / "sweep.toml").write_text(
        'name = "x"\nout = "out"\n[[stage]]\nrecipes = ["r.toml"]\n'
        '[export]\nonnx = false\nopenvino = false\nint8 = false\nncnn = true\n'
        '[bench]\nbackends = ["ncnn"]\nprecisions = ["fp32"]\nseconds = 0.05\n')
    result = CliRunner().invoke(main, ["sweep", "sweep.toml", "--export", "--bench"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "r" / "export" / "manifest.json").read_text())
    assert {a["format"] for a in manifest["artifacts"]} == {"ncnn"}
    rows = json.loads((tmp_path / "out" / "r" / "bench.json").read_text())["rows"]
    assert rows and {r["backend"] for r in rows} == {"ncnn"}


def test_bad_export_or_bench_table_is_one_line(tmp_path):
    for extra, key in (('[export]\nonnx = false\nopenvino = false\n', "export"),
                       ('[bench]\nbackends = ["tensorrt"]\n', "bench.backends[0]"),
                       ('[bench]\nseconds = 0\n', "bench.seconds"),
                       ('[export]\nexporter = "jit"\n', "export.exporter"),
                       ('[plot]\nreference_label = ["a"]\n', "plot.reference_label"),
                       ('[launcher]\ngpus_per_job = -1\n', "launcher.gpus_per_job"),
                       ('[launcher]\ngpus = 1\n', "launcher.gpus"),
                       ('[launcher]\ntime_min = "2h"\n', "launcher.time_min")):
        bad = tmp_path / "s.toml"
        bad.write_text(f'name = "x"\n[[stage]]\nrecipes = ["r.toml"]\n{extra}')
        result = CliRunner().invoke(main, ["sweep", str(bad)])
        assert_one_line_error(result, "s.toml", key)


def _two_stage_sweep(folder):
    """A teacher, then two students distilled from it (seeds 0 and 1)."""
    folder.mkdir()
    (folder / "teacher.toml").write_text(dumps_toml(tiny_table(name="t", model="conv4")))
    student = tiny_table(name="st", model="conv4_mp", method="kd",
                         teacher={"model": "conv4", "checkpoint": "out/t/model.safetensors"})
    (folder / "student.toml").write_text(dumps_toml(student))
    (folder / "sweep.toml").write_text('name = "x"\nout = "out"\n[[stage]]\nrecipes = ["teacher.toml"]\n'
                                       '[[stage]]\nrecipes = ["student.toml"]\nseeds = [0, 1]\n'
                                       '[launcher]\ntime_min = 10\n')
    return folder


def _run_files(out):
    return {p.relative_to(out).as_posix() for p in out.glob("*/*") if "submitit" not in p.parts}


def test_local_launcher_trains_the_runs_the_sequential_sweep_does(tmp_path, monkeypatch):
    """submitit's local executor: each run a job in its own process, the students' stage after the teacher's."""
    pytest.importorskip("submitit")
    for name, extra in (("sequential", []), ("local", ["--launcher", "local"])):
        monkeypatch.chdir(_two_stage_sweep(tmp_path / name))
        result = CliRunner().invoke(main, ["sweep", "sweep.toml", *extra])
        assert result.exit_code == 0, result.output
    assert "3 trained by the local launcher" in result.output
    sequential, local = tmp_path / "sequential" / "out", tmp_path / "local" / "out"
    assert _run_files(local) == _run_files(sequential) and {p.split("/")[0] for p in _run_files(local)} == \
        {"t", "st-s0", "st-s1"}
    for run in ("t", "st-s0", "st-s1"):  # the same training: bit-identical weights
        assert (local / run / "model.safetensors").read_bytes() == (sequential / run / "model.safetensors").read_bytes()


def test_a_requeued_job_resumes_its_run_from_the_checkpoint(tmp_path, monkeypatch):
    """What submitit does when SLURM preempts a job or its time runs out: call `checkpoint`, requeue what it
    returns; the requeued job finds the run's epoch checkpoint and trains only the epochs left."""
    pytest.importorskip("submitit")
    from helpers import fit_until_interrupted

    from mimkd_edge.engine.sweep_launch import TrainRun

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(dumps_toml(tiny_table(name="r", model="conv4", epochs=2)))
    (tmp_path / "sweep.toml").write_text('name = "x"\nout = "out"\n[[stage]]\nrecipes = ["r.toml"]\n')
    [job] = expand(load_sweep("sweep.toml"))
    fit_until_interrupted(job.recipe, job.out, after_epoch=1)  # the job was stopped after epoch 1
    requeued = TrainRun(str(tmp_path)).checkpoint(job)
    assert requeued.args == (job,)
    assert requeued.result() == "trained"
    summary = json.loads((tmp_path / "out" / "r" / "summary.json").read_text())
    assert [s["start_epoch"] for s in summary["sessions"]] == [0, 1]  # resumed, not retrained


_FAKE_SBATCH = """#!/bin/sh
n=$(ls "$SBATCH_LOG" | wc -l)
cp "$1" "$SBATCH_LOG/$n.sh"
echo "Submitted batch job $((100 + n))"
"""


def _fake_slurm(tmp_path, monkeypatch):
    """`srun` and `sbatch` on PATH; sbatch keeps each script it is given (0.sh, 1.sh, ...) and answers job 100, 101."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in (("srun", "#!/bin/sh\n"), ("sbatch", _FAKE_SBATCH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_LOG", str(log))
    return log


def test_slurm_queues_each_stage_as_an_array_after_the_one_before(tmp_path, monkeypatch):
    """Each stage one job array with the resources asked; the students' array held (afterok) on the teacher's;
    the command returns once both are queued."""
    pytest.importorskip("submitit")
    log = _fake_slurm(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--launcher", "slurm", "--partition", "gpu",
                                       "--gpus-per-job", "2", "--time-min", "240"])
    assert result.exit_code == 0, result.output
    teacher, students = (log / "0.sh").read_text(), (log / "1.sh").read_text()
    for line in ("--partition=gpu", "--gpus-per-node=2", "--ntasks-per-node=2", "--time=240", "--job-name=x"):
        assert line in teacher and line in students, line
    assert "--array" not in teacher and "--dependency" not in teacher  # one run: a plain job
    assert "--array=0-3" in students and "--dependency=afterok:100" in students
    assert not (tmp_path / "out" / "t").exists()  # queued, not trained


def test_slurm_launcher_needs_slurm_in_one_line(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--launcher", "slurm"])
    assert_one_line_error(result, "--launcher slurm: no SLURM here")


def test_launcher_without_submitit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "submitit", None)  # `import submitit` raises ImportError
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--launcher", "local"])
    assert_one_line_error(result, "--launcher local: needs submitit", "[cluster]")


def test_slurm_launcher_leaves_export_for_later_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--launcher", "slurm", "--export"])
    assert_one_line_error(result, "--export/--bench with --launcher slurm", "--no-train --export --bench")


@pytest.mark.parametrize("flag, value, key", [("--gpus-per-job", "500", "launcher.gpus_per_job"),
                                              ("--time-min", "0", "launcher.time_min")])
def test_a_launcher_flag_is_checked_as_the_table_is(tmp_path, monkeypatch, flag, value, key):
    pytest.importorskip("submitit")
    _fake_slurm(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(_setup(tmp_path)), "--launcher", "slurm", flag, value])
    assert_one_line_error(result, key)
    assert not list((tmp_path / "sbatch").iterdir())  # nothing queued
