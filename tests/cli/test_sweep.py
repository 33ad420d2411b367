"""`mimkd-edge sweep`: teachers first, a grid of methods, and a rerun that retrains nothing."""

import json
from pathlib import Path

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


def test_finished_run_of_another_recipe_is_refused_not_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _setup(tmp_path)
    only_teacher = tmp_path / "teacher_sweep.toml"
    only_teacher.write_text('name = "x"\nout = "out"\n\n[[stage]]\nrecipes = ["teacher.toml"]\n')
    assert CliRunner().invoke(main, ["sweep", str(only_teacher)]).exit_code == 0
    changed = tiny_table(name="t", model="conv4")
    changed["train"]["batch_size"] = 3  # e.g. a recipe default changed since the run finished
    (tmp_path / "teacher.toml").write_text(dumps_toml(changed))
    result = CliRunner().invoke(main, ["sweep", str(only_teacher)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "out/t" in result.output and "train.batch_size" in result.output


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


def test_bad_export_or_bench_table_is_one_line(tmp_path):
    for extra, key in (('[export]\nonnx = false\nopenvino = false\n', "export"),
                       ('[bench]\nbackends = ["tensorrt"]\n', "bench.backends[0]"),
                       ('[bench]\nseconds = 0\n', "bench.seconds"),
                       ('[export]\nexporter = "jit"\n', "export.exporter"),
                       ('[plot]\nreference_label = ["a"]\n', "plot.reference_label")):
        bad = tmp_path / "s.toml"
        bad.write_text(f'name = "x"\n[[stage]]\nrecipes = ["r.toml"]\n{extra}')
        result = CliRunner().invoke(main, ["sweep", str(bad)])
        assert_one_line_error(result, "s.toml", key)
