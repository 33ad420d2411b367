"""`mimkd-edge export` end to end on a tiny synthetic run: every format, the manifest, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from helpers import assert_one_line_error
from mimkd_edge.cli import main
from mimkd_edge.errors import UserError
from mimkd_edge.export import export_run
from mimkd_edge.export.onnx_export import export_onnx
from mimkd_edge.export import pipeline
from mimkd_edge.export.parity import failure_reason, measure_parity
from mimkd_edge.provenance import sha256_file
from mimkd_edge.runtime import open_session

ALL = {"onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-fp16", "openvino-int8"}


@pytest.fixture(scope="module")
def exported(tiny_run):
    """One full export (default dynamo exporter), shared by the tests below."""
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--onnx", "--openvino", "--fp16", "--int8",
                                       "--calib", "32"])
    return tiny_run, result


def test_exit_code_and_table(exported):
    run, result = exported
    assert result.exit_code == 0, result.output
    for name in ("model_fp32.onnx", "model_int8.onnx", "model_fp32.xml", "model_fp16.xml", "model_int8.xml"):
        assert name in result.output
    assert "Traceback" not in result.output


def test_manifest_lists_every_artifact_with_right_hashes(exported):
    run, result = exported
    assert result.exit_code == 0, result.output
    folder = run / "export"
    m = json.loads((folder / "manifest.json").read_text())
    assert {a["name"] for a in m["artifacts"]} == ALL
    assert m["exporter"] == "dynamo" and m["opset"] == 23 and m["model"] == "conv4"
    assert m["rewrites"] == []  # no export-time rewrite applies to Conv-4
    assert m["input"]["name"] == "input" and m["input"]["normalisation_baked"] is False
    assert m["calibration_set"]["images"] == 32 and m["classes"] == [f"class_{i}" for i in range(4)]
    for pkg in ("torch", "onnx", "onnxruntime", "openvino", "nncf"):
        assert m["versions"][pkg]
    for a in m["artifacts"]:
        main_file = folder / a["path"]
        assert main_file.is_file() and a["sha256"] == sha256_file(main_file) and a["size"] == main_file.stat().st_size
        for f in a["files"]:
            assert sha256_file(folder / f["path"]) == f["sha256"]
        assert a["opset"] == 23 and a["parity"]["passed"] and 0 <= a["test_accuracy"] <= 100
        assert a["accuracy_delta"] == pytest.approx(a["test_accuracy"] - m["pytorch"]["test_accuracy"])
        if a["name"].startswith("openvino"):
            assert [f["path"] for f in a["files"]] == [a["path"], a["path"].replace(".xml", ".bin")]
    by_name = {a["name"]: a for a in m["artifacts"]}
    for name in ("onnx-fp32", "openvino-fp32"):
        assert by_name[name]["storage_precision"] == "fp32" and by_name[name]["inference_precision"] == "fp32"
        assert by_name[name]["parity"]["max_abs_diff"] <= 1e-4
        assert by_name[name]["test_accuracy"] == pytest.approx(m["pytorch"]["test_accuracy"])
    # FP16 IR: stored in fp16, computed in fp32 (reported separately)
    assert by_name["openvino-fp16"]["storage_precision"] == "fp16"
    assert by_name["openvino-fp16"]["inference_precision"] == "fp32"
    for name in ("onnx-int8", "openvino-int8"):
        a = by_name[name]
        assert a["storage_precision"] == "int8" and a["inference_precision"].startswith("int8")
        assert a["parity"]["top1_agreement"] >= 90 and a["quantisation"]["calibration_images"] == 32
    assert by_name["onnx-int8"]["quantisation"]["format"] == "QDQ"
    assert by_name["onnx-int8"]["quantisation"]["reduce_range"] is True  # 7-bit weights: no saturation without VNNI
    assert by_name["openvino-int8"]["quantisation"]["nncf_overflow_fix"] == "enable"
    for name in ("onnx-int8", "openvino-int8"):  # quantised from the graph with the image padded to 4 channels
        assert by_name[name]["quantisation"]["rewrites"] == ["pad-input-channels"]
    assert m["failed"] == []
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_metadata_inside_the_model(exported):
    run, result = exported
    props = {p.key: p.value for p in onnx.load(str(run / "export" / "model_fp32.onnx")).metadata_props}
    assert json.loads(props["classes"]) == [f"class_{i}" for i in range(4)]
    assert json.loads(props["input_size"]) == [3, 32, 32] and len(json.loads(props["mean"])) == 3
    assert props["normalisation_baked"] == "false" and props["exporter"] == "dynamo"
    assert "[student]" in props["recipe"] and len(props["recipe_sha256"]) == 64
    assert float(props["run_test_accuracy"]) >= 0
    model = onnx.load(str(run / "export" / "model_fp32.onnx"))
    assert model.graph.input[0].name == "input" and model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    assert [o.name for o in model.graph.output] == ["logits"]
    int8 = open_session(run / "export" / "model_int8.onnx", "onnxruntime")
    assert int8.metadata["precision"] == "int8" and int8.metadata["classes"] == props["classes"]
    assert json.loads(int8.metadata["rewrites"]) == ["pad-input-channels"] and json.loads(props["rewrites"]) == []
    ir = open_session(run / "export" / "model_fp16.xml", "openvino")
    assert ir.metadata["precision"] == "fp16" and ir.metadata["recipe_sha256"] == props["recipe_sha256"]


def test_default_run_is_the_latest_under_runs(exported, tmp_path, monkeypatch):
    run, _ = exported
    shutil.copytree(run, tmp_path / "runs" / "older", ignore=shutil.ignore_patterns("export"))
    shutil.copytree(run, tmp_path / "runs" / "newest", ignore=shutil.ignore_patterns("export"))
    (tmp_path / "runs" / "newest" / "summary.json").touch()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--onnx", "--exporter", "torchscript"])
    assert result.exit_code == 0, result.output
    assert "most recently finished run" in result.output and "newest" in result.output
    m = json.loads((tmp_path / "runs" / "newest" / "export" / "manifest.json").read_text())
    assert [a["name"] for a in m["artifacts"]] == ["onnx-fp32"] and m["opset"] == 20
    assert not (tmp_path / "runs" / "older" / "export").exists()


def test_bake_normalisation(tiny_run, tmp_path):
    result = export_run(tiny_run, out=tmp_path, onnx=True, exporter="torchscript", bake_normalisation=True)
    m = result.manifest
    assert m.input["normalisation_baked"] is True and "[0, 1]" in m.input["scale"]
    a = m.artifacts[0]
    assert a.parity["max_abs_diff"] <= 1e-4 and a.test_accuracy == pytest.approx(m.pytorch["test_accuracy"])
    s = open_session(tmp_path / "model_fp32.onnx", "onnxruntime")
    assert s.metadata["normalisation_baked"] == "true"
    assert s.run(np.full((2, 3, 32, 32), 0.5, np.float32)).shape == (2, 4)


def test_accuracy_controlled_int8(tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--onnx", "--openvino", "--int8", "--calib", "16",
                                       "--max-drop", "0.5", "--exporter", "torchscript", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "onnxruntime has no accuracy-controlled" in " ".join(result.output.split())
    by_name = {a["name"]: a for a in json.loads((tmp_path / "manifest.json").read_text())["artifacts"]}
    control = by_name["openvino-int8"]["quantisation"]["accuracy_control"]
    assert control["tool"] == "nncf.quantize_with_accuracy_control" and control["max_drop_points"] == 0.5
    assert 0 <= control["validation_accuracy_int8"] <= 100 and isinstance(control["layers_kept_in_float"], list)
    assert by_name["onnx-int8"]["quantisation"]["accuracy_control"]["supported"] is False


def test_run_without_weights(tiny_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken, ignore=shutil.ignore_patterns("export", "model.safetensors"))
    assert_one_line_error(CliRunner().invoke(main, ["export", str(broken), "--onnx"]), "broken", "model.safetensors")


def test_unknown_run_and_bad_options(tiny_run, tmp_path, monkeypatch):
    assert_one_line_error(CliRunner().invoke(main, ["export", str(tmp_path / "nope"), "--onnx"]), "nope")
    assert_one_line_error(CliRunner().invoke(main, ["export", str(tiny_run), "--onnx", "--fp16"]), "--openvino")
    assert_one_line_error(CliRunner().invoke(main, ["export", str(tiny_run)]), "--onnx")
    assert_one_line_error(CliRunner().invoke(main, ["export", str(tiny_run), "--onnx", "--exporter", "torchscript",
                                              "--opset", "23"]), "--opset")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(CliRunner().invoke(main, ["export", "--onnx"]), "no finished run")


class _DataDependent(torch.nn.Module):
    input_size = 32

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.export refuses it
            return x.mean((2, 3))
        return -x.mean((2, 3))


def test_model_the_exporter_cannot_handle(tmp_path):
    with pytest.raises(UserError) as e:
        export_onnx(_DataDependent(), tmp_path / "x.onnx", input_size=32, exporter="dynamo", name="weird")
    assert "weird" in str(e.value) and "dynamo" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "x.onnx").exists()


class _Fake:
    source = "fake.onnx"

    def __init__(self, out):
        self.out = out

    def run(self, x):
        return self.out[: len(x)]


def test_parity_failures_name_the_figure():
    ref = np.eye(4, dtype=np.float64) * 5
    off = (ref + 1e-3).astype(np.float32)
    p = measure_parity(ref, _Fake(off), np.zeros((4, 3, 2, 2), np.float32), "fp32")
    assert not p.passed and "max |Δ logits| = 0.001" in failure_reason(p, "fp32")
    wrong = np.roll(ref, 1, axis=1).astype(np.float32)  # every top-1 differs
    p = measure_parity(ref, _Fake(wrong), np.zeros((4, 3, 2, 2), np.float32), "int8")
    assert p.top1_agreement == 0 and not p.passed
    assert "top-1 agreement with PyTorch 0.0%" in failure_reason(p, "int8")
    assert failure_reason(measure_parity(ref, _Fake(ref.astype(np.float32)), np.zeros((4, 3, 2, 2)), "fp32"),
                          "fp32") is None


@pytest.fixture()
def int8_of_another_model(monkeypatch, tmp_path):
    """ORT INT8 quantises a different (untrained) Conv-4 in place of the run's: it disagrees with PyTorch."""
    from mimkd_edge.models import create_model

    torch.manual_seed(123)
    other = tmp_path / "other.onnx"
    export_onnx(create_model("conv4", num_classes=4).eval(), other, input_size=32, exporter="torchscript")
    real = pipeline.quantize_onnx
    monkeypatch.setattr(pipeline, "quantize_onnx", lambda src, dst, cal, **kw: real(other, dst, cal, **kw))


def test_a_failed_int8_artifact_leaves_the_others_published(tiny_run, tmp_path, int8_of_another_model):
    out = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--onnx", "--openvino", "--int8", "--calib", "16",
                                       "--exporter", "torchscript", "--out", str(out)])
    assert result.exit_code == pipeline.EXIT_INCOMPLETE == 4, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "model_int8.onnx (onnxruntime) not published: INT8 parity failed: top-1 agreement" in text
    assert "--calib" in text and "1 artifact(s) failed their check; 3 published" in text
    m = json.loads((out / "manifest.json").read_text())
    assert {a["name"] for a in m["artifacts"]} == {"onnx-fp32", "openvino-fp32", "openvino-int8"}
    assert [f["name"] for f in m["failed"]] == ["onnx-int8"] and m["failed"][0]["parity"]["passed"] is False
    assert m["failed"][0]["parity"]["top1_agreement"] < 90
    assert not (out / "model_int8.onnx").exists() and (out / "model_fp32.onnx").is_file()
    assert "model_fp32.onnx" in result.output  # the table of what was published is printed
