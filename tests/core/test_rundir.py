"""The run directory is one typed contract: records round-trip, a missing field is named, and no
module outside mimkd_edge/rundir/ spells a run file's name."""

import dataclasses
import json
import re
from pathlib import Path

import pytest

import mimkd_edge
from mimkd_edge.errors import UserError
from mimkd_edge.rundir import RunDir, read_summary
from mimkd_edge.rundir.bench_results import COLUMNS, BenchRow, merge_csv, read_csv
from mimkd_edge.rundir.summary import DataInfo, RunSummary, StudentInfo, write_summary

RUN_FILES = ("summary.json", "manifest.json", "bench.json", "model.safetensors", "checkpoint.pt", "metrics.jsonl",
             "accuracy_cache.json")


def _summary() -> RunSummary:
    return RunSummary(name="r", method="kd", seed=3, student=StudentInfo("conv4", 113482, 3_500_000),
                      data=DataInfo("cifar10", "/data/c10", ["a", "b"], 50000, 10000, 32, [0.5] * 3, [0.25] * 3),
                      epochs=8, final_test_acc=71.25, final_train_acc=70.0, wall_seconds=1.5, images_per_s=200.0,
                      device="cpu", recipe_changes=[{"epoch": 2, "key": "train.lr", "from": 0.05, "to": 0.01}])


def test_summary_round_trips(tmp_path):
    write_summary(tmp_path, _summary())
    assert read_summary(tmp_path) == _summary()
    assert json.loads(RunDir(tmp_path).summary.read_text())["schema"] == 1


def test_a_summary_missing_a_field_is_one_line_naming_it(tmp_path):
    write_summary(tmp_path, _summary())
    raw = json.loads(RunDir(tmp_path).summary.read_text())
    del raw["final_test_acc"]
    RunDir(tmp_path).summary.write_text(json.dumps(raw))
    with pytest.raises(UserError, match="final_test_acc") as e:
        read_summary(tmp_path)
    assert str(RunDir(tmp_path).summary) in str(e.value) and "\n" not in str(e.value)


def test_a_summary_written_before_the_schema_field_still_reads(tmp_path):
    raw = dataclasses.asdict(_summary())
    del raw["schema"], raw["recipe_changes"]
    RunDir(tmp_path).summary.write_text(json.dumps(raw))
    assert read_summary(tmp_path).schema == 1


def test_bench_rows_round_trip_through_the_csv_with_their_types(tmp_path):
    row = BenchRow(run="runs/a", artifact="onnx-int8", backend="onnxruntime", threads=2, shape="static", batch=1,
                   median_ms=0.125, iters=40, accuracy=71.5, sha256="ab" * 32)
    path = merge_csv(tmp_path / "r.csv", [row])
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    (back,) = read_csv(path)
    assert back == row and isinstance(back.threads, int) and isinstance(back.median_ms, float)


def test_no_module_outside_rundir_spells_a_run_file_name():
    package = Path(mimkd_edge.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "rundir" in path.relative_to(package).parts:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(package)}: {name}" for name in RUN_FILES
                      if re.search(re.escape(name), text)]
    assert offenders == []
