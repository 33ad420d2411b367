"""bench.gpu_check, the prepared GPU check, run on CPU with tiny sizes (`--dry-run`) as on a lent machine
(`python -m bench.gpu_check` from the repository root): every stage runs and the report lands, so the
check cannot rot between the leases that run it for real."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import gpu_check
from mimkd_edge.data.cifar import CIFAR10_CLASSES

ROOT = Path(__file__).resolve().parents[2]


def test_dry_run_runs_every_stage_and_writes_the_report(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env.update(OMP_NUM_THREADS="1", MIMKD_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "bench.gpu_check", "--dry-run", "--out", str(out), "--work", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=False, text=True, timeout=400)
    assert (out / "gpu_check.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    stages = report["stages"]
    assert list(stages) == ["env", "data", "tests", "epoch", "real"]
    failed = {k: (s["status"], s["result"].get("error")) for k, s in stages.items() if s["status"] != "ok"}
    assert not failed and proc.returncode == 0, (failed, (out / "gpu_check.log").read_text()[-4000:])

    env_ = stages["env"]["result"]
    assert env_["training_imports_without_openvino"] and env_["versions"]["torch"]
    assert stages["data"]["result"]["classes"] == list(CIFAR10_CLASSES)  # the tiny stand-in poses as CIFAR-10
    counts = stages["tests"]["result"]["counts"]
    assert counts.get("failed", 0) == 0 and sum(counts.values()) >= 10  # skipped here, run on a GPU
    rows = stages["epoch"]["result"]["rows"]
    assert [r["variant"] for r in rows] == ["b16-bf16-eager", "b16-fp32-eager"]
    assert all(r["steady_images_per_s"] > 0 and r["projected_240_epochs_min"] > 0 for r in rows)
    real = stages["real"]["result"]
    assert real["teacher"]["final_test_acc"] is not None and real["student"]["method"] == "mimkd"
    assert real["export"]["parity"]["passed"] and real["openvino_or_nncf_imported"] == []
    md = (out / "gpu_check.md").read_text()
    assert "## Epoch speed" in md and "## Short real run" in md and "onnxruntime" in md
    assert (out / "gpu_check.log").stat().st_size > 0


def test_a_stage_over_its_limit_is_killed_and_keeps_what_it_recorded(tmp_path):
    """The time box: a hanging stage (here pytest on a test that sleeps) ends at its limit."""
    sleeper = tmp_path / "test_sleeper.py"
    sleeper.write_text("import time\nimport pytest\n\n\n@pytest.mark.cuda\ndef test_sleeps():\n    time.sleep(120)\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.json").write_text(json.dumps({"tests": {"paths": [str(sleeper)]}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    started = time.time()
    stage = gpu_check.run_stage("tests", 12, work, env, tmp_path / "all.log")
    assert stage["status"] == "timeout" and time.time() - started < 40
    assert "pytest" in stage["result"]["command"]  # saved before the hang
    assert "===== tests: timeout" in (tmp_path / "all.log").read_text()


def test_short_budget_scales_epochs_and_milestones_alike():
    from mimkd_edge.recipe import load_recipe

    recipe = load_recipe(ROOT / "recipes" / "cpu" / "teacher-resnet20.toml")  # 8 epochs, lr × 0.1 after 6
    assert gpu_check.scaled_schedule(recipe, 1.0) == (8, ["train.epochs=8", "train.milestones=[6]"])
    assert gpu_check.scaled_schedule(recipe, 0.5) == (4, ["train.epochs=4", "train.milestones=[3]"])
    assert gpu_check.scaled_schedule(recipe, 0.01)[0] == 1


def test_report_of_a_cut_short_check_still_renders():
    report = {"dry_run": False, "budget_s": 480, "started_at": "now", "stages": {
        "env": {"status": "ok", "seconds": 3.0, "limit_s": 30,
                "result": {"gpu": "NVIDIA H200", "capability": "9.0", "gpu_memory_gib": 139.8, "multiprocessors": 132}},
        "epoch": {"status": "timeout", "seconds": 150.0, "limit_s": 150, "result": {"rows": []}},
        "real": {"status": "skipped", "reason": "no time left in the budget"}}}
    md = gpu_check.render_markdown(report)
    assert "| epoch | timeout |" in md and "| real | skipped — no time left in the budget |" in md
    assert "NVIDIA H200" in md
