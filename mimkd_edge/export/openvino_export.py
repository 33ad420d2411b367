"""ONNX file → OpenVINO IR (.xml + .bin), FP32 or FP16-compressed, written atomically.

Converted from the .onnx file (not by tracing the module again): the IR is the very graph whose
parity was checked, with the dynamic batch axis kept. ``compress_to_fp16=True`` stores weights in
FP16 only; the CPU plugin still computes in f32 (or bf16 where the CPU has it and nobody asks for
f32); runtime.session reports the executed precision separately.

Metadata goes into the IR's rt_info under "mimkd" (read back by runtime.session as `.metadata`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import write_errors
from ..errors import UserError, one_line


def convert_onnx(onnx_path: str | Path):
    """Read an .onnx file into an in-memory ov.Model."""
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as e:
        raise UserError(f"{onnx_path}: OpenVINO cannot convert this ONNX model ({one_line(e)})") from None


def save_ir(model, xml_path: str | Path, *, compress_to_fp16: bool,
            metadata: dict[str, str] | None = None) -> list[Path]:
    """Write `model` as xml_path + its .bin; returns both paths.

    Atomic per file: the pair is written into a temporary folder beside the target, then renamed
    into place, .bin first and .xml last, so an .xml never points at a half-written .bin.
    """
    import openvino as ov

    xml_path = Path(xml_path)
    bin_path = xml_path.with_suffix(".bin")
    for k, v in (metadata or {}).items():
        model.set_rt_info(str(v), ["mimkd", k])
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        with write_errors(xml_path):  # a full disk is RuntimeError "basic_ios::clear" from OpenVINO's writer
            tmp = Path(tempfile.mkdtemp(dir=xml_path.parent, prefix=f".{xml_path.stem}."))
            ov.save_model(model, str(tmp / xml_path.name), compress_to_fp16=compress_to_fp16)
            for written in (tmp / bin_path.name, tmp / xml_path.name):
                with open(written, "rb+") as f:
                    os.fsync(f.fileno())
            os.replace(tmp / bin_path.name, bin_path)
            os.replace(tmp / xml_path.name, xml_path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return [xml_path, bin_path]


def onnx_to_ir(onnx_path: str | Path, xml_path: str | Path, *, compress_to_fp16: bool = False,
               metadata: dict[str, str] | None = None) -> list[Path]:
    """Convert an .onnx file and save it as an IR; returns [xml, bin]."""
    return save_ir(convert_onnx(onnx_path), xml_path, compress_to_fp16=compress_to_fp16, metadata=metadata)
