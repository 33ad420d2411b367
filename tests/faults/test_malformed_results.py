"""Result files of the wrong shape (a hand edit, another tool's file under our name) are one line naming
the file and what was expected, in every command that reads them; never a traceback."""

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import assert_one_line_error
from mimkd_edge.cli import main
from mimkd_edge.rundir import RunDir
from mimkd_edge.rundir.bench_results import COLUMNS
from mimkd_edge.runtime.bench import BenchConfig, bench_runs

CONFIG = BenchConfig(backends=("onnxruntime",), precisions=("fp32",), iters=3, warmup=1, sgemm=False)


@pytest.fixture()
def benched(exported_run):
    bench_runs([exported_run], CONFIG, results=None)
    return exported_run


def _edit_bench_file(run, edit):
    path = RunDir(run).bench
    raw = json.loads(path.read_text())
    path.write_text(json.dumps(edit(raw)))


@pytest.mark.parametrize("edit", [
    lambda raw: [],
    lambda raw: {**raw, "choices": {"fp32": 1}},
    lambda raw: {**raw, "choices": [{}]},
    lambda raw: {**raw, "choices": [{**raw["choices"][0], "median_ms": "fast"}]},
    lambda raw: {**raw, "choices": [{**raw["choices"][0], "artifact": ["onnx-fp32"]}]},
])
def test_predict_on_a_run_whose_bench_file_is_malformed(benched, tmp_path, edit):
    _edit_bench_file(benched, edit)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    assert_one_line_error(CliRunner().invoke(main, ["predict", str(benched), str(image)]), "bench.json")


@pytest.mark.parametrize("edit", [
    lambda raw: {**raw, "rows": {"a": 1}},
    lambda raw: {**raw, "rows": [{**raw["rows"][0], "median_ms": "fast"}]},
    lambda raw: {**raw, "rows": [{**raw["rows"][0], "threads": [1]}]},
    lambda raw: {**raw, "machine": [1, 2]},
])
def test_plot_of_a_run_whose_bench_file_is_malformed(benched, tmp_path, edit):
    _edit_bench_file(benched, edit)
    result = CliRunner().invoke(main, ["plot", str(benched), "--out", str(tmp_path / "f.png")])
    assert_one_line_error(result, "bench.json")


def test_plot_of_a_csv_with_a_non_number(tmp_path):
    path = tmp_path / "bench.csv"
    row = {c: "" for c in COLUMNS}
    row.update(run="runs/a", artifact="onnx-fp32", backend="onnxruntime", threads="1", shape="static", batch="1",
               median_ms="1.5e", accuracy="50", storage_precision="fp32")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerow(row)
    result = CliRunner().invoke(main, ["plot", "--results", str(path), "--out", str(tmp_path / "f.png")])
    assert_one_line_error(result, "bench.csv", "median_ms", "1.5e")


def test_bench_rewrites_a_malformed_bench_file(benched):
    RunDir(benched).bench.write_text('{"rows": {"a": 1}, "choices": 5}')
    assert bench_runs([benched], CONFIG, results=None)
    assert isinstance(json.loads(RunDir(benched).bench.read_text())["rows"], list)
