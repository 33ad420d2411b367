"""bench_runs on a tiny exported run: statistics in order, accuracy equal to PyTorch's, files written."""

import dataclasses
import json

import pytest

from mimkd_edge.data import load_splits
from mimkd_edge.rundir import load_run
from mimkd_edge.errors import UserError
from mimkd_edge.rundir import RunDir, load_verified
from mimkd_edge.rundir.accuracy_cache import AccuracyCache
from mimkd_edge.rundir.bench_results import COLUMNS, BenchRow, merge_csv, read_csv
from mimkd_edge.runtime.accuracy import evaluate
from mimkd_edge.runtime.artifacts import list_artifacts
from mimkd_edge.runtime.bench import BenchConfig, bench_runs
from mimkd_edge.runtime.session import open_session

FAST = dict(iters=30, warmup=3, throughput_batch=8, sgemm=False)


@pytest.fixture(scope="module")
def bench(exported_run, tmp_path_factory):
    results = tmp_path_factory.mktemp("results") / "bench.csv"
    config = BenchConfig(backends=("torch", "onnxruntime"), precisions=("fp32",), **FAST)
    rows = bench_runs([exported_run], config, results=results)
    return rows, results


def test_statistics_are_ordered(bench):
    rows, _ = bench
    assert {(r.backend, r.shape) for r in rows} == {("torch", "eager"), ("onnxruntime", "static"),
                                                   ("onnxruntime", "dynamic")}
    for r in rows:
        assert r.min_ms <= r.median_ms <= r.p90_ms <= r.p99_ms
        assert r.iters == 30 and r.threads == 1 and r.batch == 1
        assert r.storage_precision == "fp32" and r.inference_precision == "fp32"
        assert r.bound_ms_est is None or r.bound_ms_est > 0
    dynamic = [r for r in rows if r.shape != "static"]
    assert all(r.throughput_batch == 8 and r.throughput_ips > 0 for r in dynamic)


def test_onnx_accuracy_equals_pytorch(bench, exported_run):
    rows, _ = bench
    by_backend = {r.backend: r.accuracy for r in rows}
    assert by_backend["onnxruntime"] == by_backend["torch"]
    # and directly, on the same data: the PyTorch model vs the FP32 ONNX file, plus a padded static batch
    loaded = load_run(exported_run)
    splits = load_splits(loaded.recipe.data)
    onnx_path = exported_run / "export" / "model_fp32.onnx"
    accs = [evaluate(open_session(source, backend, static_batch=static), splits.test, splits.mean, splits.std)
            for source, backend, static in ((loaded.model, "torch", None), (onnx_path, "onnxruntime", None),
                                            (onnx_path, "onnxruntime", 5))]
    assert [a.images for a in accs] == [len(splits.test)] * 3
    assert [a.accuracy for a in accs] == [by_backend["torch"]] * 3


def test_files_written(bench, exported_run):
    rows, results = bench
    report = json.loads(RunDir(exported_run).bench.read_text())
    machine = report["machine"]
    assert machine["cpu"]["model"] and machine["usable_cpus"] >= 1 and isinstance(machine["cpu"]["isa"], list)
    assert "load_average_start" in machine and "load_average_end" in machine
    assert machine["peak_estimated"]["peak_source"] == "estimated from ISA"
    assert report["versions"]["onnxruntime"] and len(report["rows"]) == len(rows)
    csv_rows = read_csv(results)
    assert len(csv_rows) == len(rows) and results.read_text().splitlines()[0] == ",".join(COLUMNS)
    assert csv_rows[0].median_ms == pytest.approx(rows[0].median_ms, rel=1e-5)
    cache = json.loads(RunDir(exported_run).accuracy_cache.read_text())["entries"]
    manifest = load_verified(RunDir(exported_run).export)
    assert set(cache[manifest.artifacts[0].sha256]) == {"onnxruntime"}


def test_accuracy_cache_hits_only_on_the_same_split(bench, exported_run):
    cache = AccuracyCache(RunDir(exported_run).export)
    sha = load_verified(RunDir(exported_run).export).artifacts[0].sha256
    split = next(iter(cache.entries[sha].values()))["split"]
    hit = cache.lookup(sha, "onnxruntime", split)
    assert hit is not None and hit.cached and hit.accuracy == bench[0][0].accuracy
    assert cache.lookup(sha, "onnxruntime", {**split, "images": split["images"] + 1}) is None
    assert cache.lookup(sha, "openvino", split) is None


def test_merge_csv_replaces_same_key(tmp_path):
    path = tmp_path / "r.csv"
    row = BenchRow(run="runs/a", artifact="onnx-fp32", backend="onnxruntime", threads=1, shape="static",
                   batch=1, median_ms=1.0)
    merge_csv(path, [row, dataclasses.replace(row, run="runs/b")])
    merge_csv(path, [dataclasses.replace(row, median_ms=2.0), dataclasses.replace(row, threads=2)])
    got = read_csv(path)
    assert [(r.run, r.threads, r.median_ms) for r in got] == [("runs/a", 1, 2.0), ("runs/b", 1, 1.0),
                                                              ("runs/a", 2, 1.0)]


def test_selection_and_bad_options(exported_run):
    manifest = load_verified(RunDir(exported_run).export)
    arts = list_artifacts(exported_run, manifest, ("torch", "onnxruntime", "openvino"), ("int8",))
    assert arts == []  # the fixture exported FP32 ONNX only
    arts = list_artifacts(exported_run, manifest, ("openvino",), ("fp32",))
    assert [(a.backend, a.format) for a in arts] == [("openvino", "onnx")]  # no IR: OpenVINO runs the .onnx
    arts = list_artifacts(exported_run, manifest, ("openvino",), ("fp32",), ("f32", "bf16"))
    assert [(a.label, a.compute, a.cache_backend) for a in arts] == [
        ("onnx-fp32", "f32", "openvino"), ("onnx-fp32@bf16", "bf16", "openvino@bf16")]
    for bad in (dict(backends=("tensorrt",)), dict(ov_compute=("f16",)), dict(threads=(0,)),
                dict(seconds=1.0, iters=5), dict(seconds=-1.0)):
        with pytest.raises(UserError):
            BenchConfig(**bad)
    with pytest.raises(UserError, match="no such run"):
        bench_runs([exported_run.parent / "nope"], BenchConfig(iters=1), results=None)


def test_auto_ov_compute_adds_bf16_only_where_the_cpu_computes_it(monkeypatch):
    from mimkd_edge.runtime import hardware

    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    assert BenchConfig(ov_compute=("auto",)).ov_compute == ("f32", "bf16")
    assert BenchConfig(ov_compute=("bf16", "auto")).ov_compute == ("bf16", "f32")
    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    assert BenchConfig(ov_compute=("auto",)).ov_compute == ("f32",)
