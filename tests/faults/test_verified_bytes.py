"""Verify what you use: the bench hashes the bytes it loads, so a file changed or removed after its
check is either refused or never read again; a row never pairs one file's hash with another's figures."""

import shutil

import pytest

from mimkd_edge.errors import UserError
from mimkd_edge.export import export_run
from mimkd_edge.provenance import sha256_file
from mimkd_edge.rundir import RunDir
from mimkd_edge.runtime import bench
from mimkd_edge.runtime.bench import BenchConfig, bench_runs


def _config(backend):
    return BenchConfig(backends=(backend,), precisions=("fp32",), iters=3, warmup=1, sgemm=False)


def test_an_export_published_mid_bench_is_refused_not_measured(exported_run, monkeypatch):
    real, published = bench.verified_export, []

    def verified_then_republished(folder):
        verified = real(folder)
        if not published:  # another graph, its manifest and all, right after the bench checked the first
            published.append(export_run(exported_run, onnx=True, exporter="torchscript", bake_normalisation=True))
        return verified

    monkeypatch.setattr(bench, "verified_export", verified_then_republished)
    with pytest.raises(UserError, match="model_fp32.onnx.*differs from the manifest"):
        bench_runs([exported_run], _config("onnxruntime"), results=None)


@pytest.mark.parametrize("backend, exported, removed", [
    ("onnxruntime", dict(onnx=True), "model_fp32.onnx"),
    ("openvino", dict(onnx=True, openvino=True), "model_fp32.bin"),
])
def test_the_bytes_checked_are_the_bytes_run(exported_run, monkeypatch, backend, exported, removed):
    """The file goes away once its accuracy is measured: every later session is built from the bytes read."""
    if exported.get("openvino"):
        export_run(exported_run, exporter="torchscript", **exported)
    real = bench.evaluate

    def evaluate_then_remove(*args, **kwargs):
        result = real(*args, **kwargs)
        (RunDir(exported_run).export / removed).unlink()
        return result

    monkeypatch.setattr(bench, "evaluate", evaluate_then_remove)
    rows = bench_runs([exported_run], _config(backend), results=None)
    assert {r.shape for r in rows} == {"static", "dynamic"} and all(r.median_ms > 0 for r in rows)


def test_the_torch_rows_hash_is_that_of_the_weights_loaded(exported_run, tmp_path, monkeypatch):
    weights = RunDir(exported_run).weights
    proven = sha256_file(weights)
    other = shutil.copytree(exported_run, tmp_path / "other")
    from safetensors.torch import load_file, save_file

    state = {k: v + 1 if v.is_floating_point() else v for k, v in load_file(str(RunDir(other).weights)).items()}
    save_file(state, str(RunDir(other).weights))
    real = bench.load_run

    def loaded_then_replaced(path):
        loaded = real(path)
        shutil.copyfile(RunDir(other).weights, weights)  # a training writing new weights mid-bench
        return loaded

    monkeypatch.setattr(bench, "load_run", loaded_then_replaced)
    rows = bench_runs([exported_run], _config("torch"), results=None)
    assert rows and {r.sha256 for r in rows} == {proven}
