"""PyTorch student → ExecuTorch program (`.pte`, XNNPACK-delegated), FP32 or INT8, plus its sidecar metadata.

FP32: `torch.export` of the module at one image (1, C, H, W) → `to_edge_transform_and_lower` with the
XNNPACK partitioner → `.to_executorch()`. INT8: torchao's PT2E flow on the exported graph with
ExecuTorch's XNNPACKQuantizer (`get_symmetric_quantization_config(is_per_channel=True)`: s8 weights,
symmetric per output channel; s8 activations, per tensor, from a histogram observer), calibrated on the
export's INT8 calibration images (the same images the ONNX and OpenVINO INT8 artifacts are calibrated
on), one image per call, then lowered the same way. The program takes one image: the session runs a
batch image by image. Written atomically: the sidecar first, the .pte last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from ..atomic import atomic_write, write_text
from ..errors import UserError, one_line
from ..runtime.sidecar import sidecar_path, sidecar_text
from .quiet import quiet

_NOISY = ("torch", "torch.export", "torch._dynamo", "executorch", "torchao", "root")


def export_pte(model: nn.Module, path: str | Path, *, input_shape: tuple[int, int, int], metadata: dict[str, str],
               name: str = "model") -> list[Path]:
    """`model` (eval, CPU, fp32) as an FP32 XNNPACK program at `path` + its sidecar; returns both paths."""
    import torch

    example = torch.zeros(1, *input_shape)
    try:
        with quiet(*_NOISY), torch.no_grad():
            program = torch.export.export(model.eval(), (example,))
            return _write(_lower(program), Path(path), metadata)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{name}: ExecuTorch cannot export this model ({one_line(e)}); try --no-rewrite") from None


def quantize_pte(model: nn.Module, path: str | Path, calibration: np.ndarray, *, input_shape: tuple[int, int, int],
                 metadata: dict[str, str], name: str = "model") -> tuple[list[Path], dict]:
    """`model` quantised to INT8 by XNNPACKQuantizer on `calibration` (float32 NCHW, prepared as at test time)
    and lowered to XNNPACK at `path` + its sidecar; returns (paths, the settings the manifest records)."""
    import torch

    example = torch.zeros(1, *input_shape)
    try:
        with quiet(*_NOISY), torch.no_grad():
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
                XNNPACKQuantizer, get_symmetric_quantization_config)
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

            quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            prepared = prepare_pt2e(torch.export.export(model.eval(), (example,)).module(), quantizer)
            for i in range(len(calibration)):
                prepared(torch.from_numpy(np.ascontiguousarray(calibration[i: i + 1])))
            converted = convert_pt2e(prepared)
            files = _write(_lower(torch.export.export(converted, (example,))), Path(path), metadata)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{name}: ExecuTorch cannot quantise this model ({one_line(e)})") from None
    from ..provenance import versions

    found = versions(("executorch", "torchao"))
    return files, {"tool": "torchao.quantization.pt2e (prepare_pt2e / convert_pt2e)", "executorch": found["executorch"],
                   "torchao": found["torchao"], "quantizer": "XNNPACKQuantizer",
                   "config": "get_symmetric_quantization_config(is_per_channel=True)",
                   "activations": "s8 per tensor (histogram observer)", "weights": "s8 per-channel (symmetric)",
                   "calibration_images": int(len(calibration)),
                   "overflow_fix": "not applicable (XNNPACKQuantizer has no such option)", "accuracy_control": None}


def _lower(exported):
    """An exported program, its supported subgraphs delegated to XNNPACK, as an ExecuTorch program."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()


def _write(program, path: Path, metadata: dict[str, str]) -> list[Path]:
    write_text(sidecar_path(path), sidecar_text(metadata))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(program.buffer))
    return [path, sidecar_path(path)]
