"""Bench rows are keyed by the run itself, not by how it was named from the working directory: the same
run benched from three folders is one set of rows in bench.json, the CSV and the figure."""

import json
import os

from click.testing import CliRunner

from mimkd_edge.cli import main
from mimkd_edge.report.plot import select_points
from mimkd_edge.rundir import RunDir
from mimkd_edge.rundir.bench_results import load_results, read_csv


def test_the_same_run_benched_from_three_folders_is_one_row_set(exported_run, tmp_path, monkeypatch):
    results = tmp_path / "bench.csv"
    folders = [exported_run.parent.parent, exported_run.parent, tmp_path / "elsewhere"]
    folders[-1].mkdir()
    for folder in folders:
        monkeypatch.chdir(folder)
        result = CliRunner().invoke(main, ["bench", os.path.relpath(exported_run, folder), "--backend",
                                           "torch,onnxruntime", "--precision", "fp32", "--iters", "3", "--warmup",
                                           "1", "--threads", "1", "--results", str(results)])
        assert result.exit_code == 0, result.output
    rows = read_csv(results)
    assert len({r.run for r in rows}) == 1 and len(rows) == len({r.key for r in rows}) == 3  # torch + ORT × 2 shapes
    kept = json.loads(RunDir(exported_run).bench.read_text())["rows"]
    assert len(kept) == 3
    points = select_points(load_results([exported_run], results))
    assert sorted(p["artifact"] for p in points) == ["onnx-fp32", "torch-fp32"]
