"""A full disk is one line naming the file, whichever library was writing, and the previous file stays:
torch.save and OpenVINO report it as a RuntimeError of their own, not as an OSError."""

import pytest

from mimkd_edge.atomic import atomic_write
from mimkd_edge.errors import UserError

TORCH_FULL = "[enforce fail at inline_container.cc:626] . unexpected pos 1344 vs 1232"
TORCH_WRITE = ("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: "
               "file write failed")
OPENVINO_FULL = "Exception from src/core/src/pass/serialize.cpp:1290:\nbasic_ios::clear: iostream error"


@pytest.mark.parametrize("message", [TORCH_FULL, TORCH_WRITE, OPENVINO_FULL])
def test_a_library_reporting_a_full_disk_keeps_the_previous_file(tmp_path, message):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")

    def full(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError(message)

    with pytest.raises(UserError, match="checkpoint.pt: cannot write") as e:
        atomic_write(target, full)
    assert "\n" not in str(e.value) and "previous file" in str(e.value)
    assert target.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_other_runtime_errors_are_not_disguised(tmp_path):
    def bug(tmp):
        raise RuntimeError("a bug, not the disk")

    with pytest.raises(RuntimeError, match="a bug"):
        atomic_write(tmp_path / "x", bug)


def test_torch_save_on_a_full_disk(tmp_path, monkeypatch):
    import torch

    from mimkd_edge.rundir.checkpoint import Checkpoint, capture_rng, save_checkpoint

    target = tmp_path / "checkpoint.pt"
    save_checkpoint(target, Checkpoint(1, {}, {}, {}, {}, capture_rng(), []))
    before = target.read_bytes()

    def full(obj, f, *args, **kwargs):
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match="checkpoint.pt: cannot write"):
        save_checkpoint(target, Checkpoint(2, {}, {}, {}, {}, capture_rng(), []))
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_openvino_save_model_on_a_full_disk(tmp_path, monkeypatch):
    import openvino as ov

    from mimkd_edge.export.openvino_export import save_ir

    xml = tmp_path / "model_fp32.xml"
    xml.write_text("<previous/>")
    xml.with_suffix(".bin").write_bytes(b"previous")
    param = ov.opset13.parameter([1, 4], ov.Type.f32, name="input")
    model = ov.Model([ov.opset13.relu(param)], [param], "m")

    def full(*args, **kwargs):
        raise RuntimeError(OPENVINO_FULL)

    monkeypatch.setattr(ov, "save_model", full)
    with pytest.raises(UserError, match="model_fp32.xml: cannot write") as e:
        save_ir(model, xml, compress_to_fp16=False)
    assert "\n" not in str(e.value)
    assert xml.read_text() == "<previous/>" and xml.with_suffix(".bin").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_fp32.bin", "model_fp32.xml"]
