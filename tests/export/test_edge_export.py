"""ncnn and ExecuTorch artifacts: exported beside the others, proven by the same gates, listed in the manifest
with their sidecar metadata (hashed like the weights); a missing extra is one line; the plan's checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from helpers import NO_TORCH_PREAMBLE, assert_one_line_error
from mimkd_edge.cli import main
from mimkd_edge.errors import UserError
from mimkd_edge.export import ExportPlan, export_run
from mimkd_edge.rundir import RunDir, load_verified


@pytest.fixture(scope="module")
def edge_run(tiny_run, tmp_path_factory):
    """A copy of tiny_run (a 1-epoch Conv-4, synthetic data) exported to ncnn (FP32, FP16 weights) and ExecuTorch
    (FP32, INT8)."""
    run = tmp_path_factory.mktemp("edge") / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export", "bench.json"))
    result = export_run(run, ExportPlan(onnx=False, ncnn=True, executorch=True, fp16=True, int8=True, calib=32),
                        threads=1)
    assert result.complete, [f.line() for f in result.failures]
    return run


@pytest.fixture(scope="module")
def edge_export(edge_run):
    return RunDir(edge_run).export


def test_every_edge_artifact_passes_the_gates_and_is_listed_with_its_sidecar(edge_export):
    manifest = load_verified(edge_export)
    by_name = {a.name: a for a in manifest.artifacts}
    assert set(by_name) == {"ncnn-fp32", "ncnn-fp16", "executorch-fp32", "executorch-int8"}  # no .onnx asked for
    ncnn, pte, int8 = by_name["ncnn-fp32"], by_name["executorch-fp32"], by_name["executorch-int8"]
    assert [f.path for f in ncnn.files] == ["model_fp32.ncnn.param", "model_fp32.ncnn.bin",
                                            "model_fp32.ncnn.param.json"]
    assert [f.path for f in pte.files] == ["model_fp32.pte", "model_fp32.pte.json"]
    assert (ncnn.format, ncnn.backend, pte.format, pte.backend) == ("ncnn", "ncnn", "executorch-pte", "executorch")
    for fp32 in (ncnn, pte):
        assert fp32.parity["passed"] and max(fp32.parity["max_abs_diff"], fp32.parity["batch1_max_abs_diff"]) <= 1e-4
        assert fp32.test_accuracy == pytest.approx(manifest.pytorch["test_accuracy"])
    assert int8.storage_precision == "int8" and int8.parity["top1_agreement"] >= 90
    fp16 = by_name["ncnn-fp16"]
    assert (fp16.storage_precision, fp16.inference_precision) == ("fp16", "fp32") and fp16.parity["passed"]
    assert fp16.files[1].size < ncnn.files[1].size  # its weights are stored in half the bytes (and a header)
    assert int8.quantisation["calibration_images"] == manifest.calibration_set["images"] == 32
    meta = json.loads((edge_export / "model_int8.pte.json").read_text())
    assert json.loads(meta["classes"]) == manifest.classes and meta["precision"] == "int8"
    assert json.loads(meta["input_size"]) == manifest.input["shape"][1:]


def test_an_edited_sidecar_is_refused_like_changed_weights(edge_export, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(edge_export, folder)
    sidecar = folder / "model_fp32.ncnn.param.json"
    meta = json.loads(sidecar.read_text())
    meta["classes"] = json.dumps(list(reversed(json.loads(meta["classes"]))))
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="model_fp32.ncnn.param.json"):
        load_verified(folder)


def test_pnnx_converts_a_model_whose_children_are_named_0(tmp_path, monkeypatch):
    """pnnx.export imports the Python file it writes, where `self.0 = ...` is a syntax error; export_ncnn runs the
    converter itself and never imports that file. The target is relative: pnnx runs in a folder of its own."""
    from mimkd_edge.export.ncnn_export import export_ncnn
    from mimkd_edge.runtime.session import open_session

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()
    monkeypatch.chdir(tmp_path)
    files = export_ncnn(model, Path("out") / "seq.ncnn.param", input_shape=(3, 8, 8), fp16=False,
                        metadata={"precision": "fp32"})
    assert [f.name for f in files] == ["seq.ncnn.param", "seq.ncnn.bin", "seq.ncnn.param.json"]
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(open_session(files[0], "ncnn").run(x) - expected).max() <= 1e-5


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--ncnn", "--int8"], "ncnn artifacts are FP32/FP16 only"),
    (["--executorch", "--fp16"], "add --openvino or --ncnn"),
])
def test_plan_checks_the_edge_formats(tiny_run, flags, fragment):
    assert_one_line_error(CliRunner().invoke(main, ["export", str(tiny_run), *flags]), fragment)


def test_a_missing_extra_is_one_line_before_any_work(tiny_run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pnnx" else real(name, *a))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--ncnn", "--out", str(out)])
    assert_one_line_error(result, "--ncnn needs pnnx", "pip install -e '.[ncnn]'")
    assert not out.exists()  # refused before the run was read or a folder made


# a device with ncnn, numpy and Pillow (and the CLI's click and rich): torch and the other runtimes cannot be imported
_ONLY_NCNN = ('("torch", "torchvision")', '("torch", "torchvision", "onnxruntime", "onnx", "openvino")')
_DEVICE = NO_TORCH_PREAMBLE.replace(*_ONLY_NCNN) + """
from mimkd_edge.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert not {m.split(".")[0] for m in sys.modules} & {"torch", "onnxruntime", "openvino"}, "imported"
    sys.exit(e.code)
"""


def test_export_bench_choice_predict_end_to_end(edge_run, tmp_path):
    """bench measures the ncnn and ExecuTorch artifacts with the same loop and accuracy; the choice picks the fastest
    per precision among them; predict runs the choice, and the .param graph where torch, onnxruntime and openvino
    cannot be imported (a device with only ncnn, numpy and Pillow: the CLI's click and rich aside)."""
    import subprocess
    import sys

    from PIL import Image

    assert _ONLY_NCNN[0] in NO_TORCH_PREAMBLE  # the device below blocks the other runtimes too
    runner = CliRunner()
    r = runner.invoke(main, ["bench", str(edge_run), "--backend", "ncnn,executorch", "--seconds", "0.05", "--warmup",
                             "2", "--throughput-batch", "0", "--shape", "static", "--results", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    bench = json.loads(RunDir(edge_run).bench.read_text())
    rows = {(row["artifact"], row["backend"]): row for row in bench["rows"]}
    assert set(rows) == {("ncnn-fp32", "ncnn"), ("ncnn-fp16", "ncnn"), ("executorch-fp32", "executorch"),
                         ("executorch-int8", "executorch")}
    manifest = {a.name: a for a in load_verified(RunDir(edge_run).export).artifacts}
    for (name, _), row in rows.items():
        assert row["p90_ms"] >= row["median_ms"] > 0 and row["accuracy"] == pytest.approx(manifest[name].test_accuracy)
    choices = {c["precision"]: c for c in bench["choices"]}
    fastest_fp32 = min((rows[k] for k in rows if "int8" not in k[0]), key=lambda row: row["median_ms"])
    assert choices["fp32"]["artifact"] == fastest_fp32["artifact"] and choices["int8"]["artifact"] == "executorch-int8"

    rng = np.random.default_rng(0)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images / f"{i}.png")
    for precision in ("fp32", "int8"):
        got = runner.invoke(main, ["predict", str(edge_run), str(images), "--json", "--precision", precision])
        assert got.exit_code == 0, got.output
        report = json.loads(got.output)
        assert report["backend"] == choices[precision]["backend"] and len(report["predictions"]) == 3
        assert report["artifact"].endswith(manifest[choices[precision]["artifact"]].path)
    param = str(RunDir(edge_run).export / "model_fp32.ncnn.param")
    here = json.loads(runner.invoke(main, ["predict", param, str(images), "--json"]).output)
    device = subprocess.run([sys.executable, "-c", _DEVICE, "predict", param, str(images), "--json"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert device.returncode == 0, device.stderr[-2000:]
    report = json.loads(device.stdout)
    assert report["backend"] == "ncnn" and report["predictions"] == here["predictions"]


def test_bench_leaves_out_an_artifact_whose_runtime_is_not_installed(edge_run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ncnn" else real(name, *a))
    r = CliRunner().invoke(main, ["bench", str(edge_run), "--backend", "ncnn,executorch", "--precision", "fp32",
                                  "--seconds", "0.02", "--warmup", "1", "--throughput-batch", "0", "--shape", "static",
                                  "--results", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())
    assert "not measured: ncnn-fp32 (ncnn is not installed here: pip install ncnn" in flat
    import csv

    with open(tmp_path / "b.csv", newline="") as f:
        assert {row["artifact"] for row in csv.DictReader(f)} == {"executorch-fp32"}  # this invocation's rows
