"""runtime.session: one interface over torch / onnxruntime / openvino, and clean errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mimkd_edge.errors import UserError
from mimkd_edge.export.onnx_export import export_onnx
from mimkd_edge.export.openvino_export import onnx_to_ir
from mimkd_edge.models import create_model
from mimkd_edge.runtime import open_session


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("session")
    torch.manual_seed(0)
    model = create_model("conv4", num_classes=5).eval()
    onnx_path = tmp / "m.onnx"
    export_onnx(model, onnx_path, input_size=32, exporter="torchscript", name="conv4", metadata={"classes": "[1]"})
    xml_path = onnx_to_ir(onnx_path, tmp / "m.xml", compress_to_fp16=False, metadata={"classes": "[2]"})[0]
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    return {"model": model, "onnx": onnx_path, "xml": xml_path, "x": x.numpy(), "ref": ref, "tmp": tmp}


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_backends_agree(artifacts, backend):
    source = artifacts["model"] if backend == "torch" else artifacts["xml" if backend == "openvino" else "onnx"]
    s = open_session(source, backend, threads=1)
    assert s.backend == backend and s.precision == "fp32" and s.inference_precision == "fp32"
    out = s.run(artifacts["x"])
    assert out.dtype == np.float32 and out.shape == (4, 5)
    assert np.abs(out - artifacts["ref"]).max() <= 1e-4


def test_metadata_read_back(artifacts):
    assert open_session(artifacts["onnx"], "onnxruntime").metadata["classes"] == "[1]"
    assert open_session(artifacts["xml"], "openvino").metadata["classes"] == "[2]"


@pytest.mark.parametrize("backend,key", [("onnxruntime", "onnx"), ("openvino", "xml"), ("openvino", "onnx")])
def test_static_batch(artifacts, backend, key):
    s = open_session(artifacts[key], backend, static_batch=2)
    assert s.static_batch == 2 and s.input_shape[0] == 2
    assert np.abs(s.run(artifacts["x"][:2]) - artifacts["ref"][:2]).max() <= 1e-4
    with pytest.raises(ValueError):
        s.run(artifacts["x"])


@pytest.mark.parametrize("backend,key", [("onnxruntime", "onnx"), ("openvino", "xml")])
def test_static_batch_buffers_are_refilled_each_call_and_never_handed_out(artifacts, backend, key):
    """Static-batch sessions reuse one input and one output buffer: every call must see its own
    input, and an earlier result must not change under the caller when a later call runs."""
    s = open_session(artifacts[key], backend, static_batch=1)
    x, ref = artifacts["x"], artifacts["ref"]
    outs = []
    for i in [0, 1, 2, 3, 1]:
        xi = x[i:i + 1].copy()
        outs.append(s.run(xi))
        xi[:] = 0  # the caller reusing its array must not reach the session's buffer
    for out, i in zip(outs, [0, 1, 2, 3, 1], strict=True):
        assert np.abs(out - ref[i:i + 1]).max() <= 1e-4
    assert not np.shares_memory(outs[1], outs[4])


def test_openvino_defaults_to_f32_compute(artifacts):
    s = open_session(artifacts["xml"], "openvino")
    assert s.hint == "f32" and s.inference_precision == "fp32"
    auto = open_session(artifacts["xml"], "openvino", inference_precision="auto")
    assert auto.inference_precision in ("fp32", "bf16", "fp16")  # the device's own choice


def _assert_one_line(err: UserError, path) -> None:
    message = str(err)
    assert "\n" not in message and str(path) in message and len(message) < 400


@pytest.mark.parametrize("backend,key", [("onnxruntime", "onnx"), ("openvino", "onnx"), ("openvino", "xml")])
def test_truncated_artifact_is_one_line_user_error(artifacts, backend, key):
    src = artifacts[key]
    bad = artifacts["tmp"] / f"truncated-{backend}{src.suffix}"
    data = src.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    if src.suffix == ".xml":
        bad.with_suffix(".bin").write_bytes(src.with_suffix(".bin").read_bytes())
    with pytest.raises(UserError) as e:
        open_session(bad, backend)
    _assert_one_line(e.value, bad)


def test_truncated_bin_is_one_line_user_error(artifacts):
    tmp = artifacts["tmp"]
    xml = tmp / "badbin.xml"
    xml.write_bytes(artifacts["xml"].read_bytes())
    data = artifacts["xml"].with_suffix(".bin").read_bytes()
    xml.with_suffix(".bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError) as e:
        open_session(xml, "openvino")
    _assert_one_line(e.value, xml)


def test_missing_files_and_bad_arguments(artifacts):
    tmp = artifacts["tmp"]
    lonely = tmp / "lonely.xml"
    lonely.write_bytes(artifacts["xml"].read_bytes())
    with pytest.raises(UserError, match="lonely.bin"):
        open_session(lonely, "openvino")
    with pytest.raises(UserError, match="no such file"):
        open_session(tmp / "absent.onnx", "onnxruntime")
    with pytest.raises(UserError, match="unknown backend"):
        open_session(artifacts["onnx"], "tensorrt")
    with pytest.raises(UserError, match=".onnx"):
        open_session(artifacts["xml"], "onnxruntime")
