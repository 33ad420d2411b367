"""PyTorch student → one self-describing ONNX file: logits only, input "input", dynamic batch.

Exporter and opset are explicit. The default opset, 23, is the newest all three parties here
handle: torch 2.14's dynamo exporter writes opsets 18..23 (torch.onnx._constants.ONNX_MAX_OPSET;
its TorchScript exporter up to 20); onnxruntime 1.32 registers CPU kernels up to opset 28; and
OpenVINO 2026.4's ONNX front end, which publishes no maximum, converted and ran all 32 zoo models
exported by dynamo at opset 23 with parity ≤ 1e-4 at batch 1 and 3, as onnxruntime did (a one-off
check of tests/export/test_zoo_export.py's `_check` with exporter="dynamo", 197 s; the test suite
itself runs the zoo through TorchScript at opset 20, and dynamo at 23 on Conv-4 and ShuffleNetV2).
The TorchScript exporter defaults to 20, its maximum.

The graph's input is "input" (float32, N×3×H×W, N named "batch" and dynamic); its output "logits".
By default the input is *normalised* images: ``(rgb_uint8 / 255 - mean) / std`` per channel. With
``bake_normalisation`` the graph starts with that step itself and takes raw pixels scaled to [0, 1]
(``rgb_uint8 / 255``), NCHW. Either way the metadata says which (``input_scale``).

metadata_props written into the model: model, classes (JSON), input_size (JSON [C, H, W]),
mean/std (JSON), normalisation_baked ("true"/"false"), input_scale (prose), precision, exporter,
opset, plus whatever the caller adds (the export pipeline adds the recipe TOML, its sha256, and the
run's test accuracy).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..errors import UserError, one_line
from .plan import resolve_opset
from .quiet import quiet

INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "input", "logits", "batch"

SCALE_NORMALISED = ("normalised: (uint8 / 255 - mean) / std per channel (gray or RGB, as input_size says), "
                    "float32 NCHW")
SCALE_RAW = ("raw pixels in [0, 1]: uint8 / 255 (gray or RGB, as input_size says), float32 NCHW "
             "(normalisation is in the graph)")


class NormalisedInput(nn.Module):
    """Wraps a classifier so it takes raw pixels in [0, 1] (uint8 / 255, NCHW) and normalises itself
    with the training set's per-channel mean and std before calling the model."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_size = getattr(model, "input_size", 32)
        self.in_chans = getattr(model, "in_chans", 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


@dataclass
class OnnxExport:
    path: Path
    exporter: str
    opset: int
    seconds: float


def export_onnx(model: nn.Module, path: str | Path, *, input_size: int | tuple[int, int], opset: int | None = None,
                exporter: str = "dynamo", metadata: dict[str, str] | None = None, name: str = "model") -> OnnxExport:
    """Export `model` (eval mode, CPU, fp32; forward(x) → logits) to `path`, atomically.

    Runs onnx.checker with full_check and verifies the input/output names and the dynamic batch axis.
    An exporter failure is a UserError naming `name` and the exporter.
    """
    path = Path(path)
    opset = resolve_opset(exporter, opset)
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    model = model.eval()
    chans = getattr(model, "in_chans", 3)
    example = torch.zeros(2, chans, h, w)  # batch 2: nothing gets specialised to a size-1 batch
    started = time.perf_counter()
    try:
        with quiet("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch"), torch.no_grad():
            proto = _dynamo(model, example, opset) if exporter == "dynamo" else _torchscript(model, example, opset)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{name}: the {exporter} ONNX exporter cannot handle this model ({one_line(e)}); "
                        f"try --exporter {'torchscript' if exporter == 'dynamo' else 'dynamo'}") from None
    seconds = time.perf_counter() - started
    _check_graph(proto, name, exporter)
    props = {"model": name, "exporter": exporter, "opset": str(opset), "precision": "fp32", **(metadata or {})}
    set_metadata(proto, props)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(proto.SerializeToString()))
    return OnnxExport(path, exporter, opset, seconds)


def _dynamo(model: nn.Module, example: torch.Tensor, opset: int):
    program = torch.onnx.export(model, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                opset_version=opset, dynamo=True, external_data=False, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},))
    return program.model_proto


def _torchscript(model: nn.Module, example: torch.Tensor, opset: int):
    import onnx

    buf = io.BytesIO()
    torch.onnx.export(model, (example,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      opset_version=opset, dynamo=False, verbose=False, do_constant_folding=True,
                      dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}})
    return onnx.load_from_string(buf.getvalue())


def _check_graph(proto, name: str, exporter: str) -> None:
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise UserError(f"{name}: the {exporter} exporter wrote an invalid ONNX graph ({one_line(e)})") from None
    inputs, outputs = proto.graph.input, proto.graph.output
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME or len(outputs) != 1:
        raise UserError(f"{name}: exported graph has inputs {[i.name for i in inputs]} and "
                        f"{len(outputs)} outputs; expected one input \"{INPUT_NAME}\" and the logits only")
    dim0 = inputs[0].type.tensor_type.shape.dim[0]
    if not dim0.dim_param:
        raise UserError(f"{name}: the {exporter} exporter fixed the batch axis to {dim0.dim_value}; "
                        "expected a dynamic batch")


def set_metadata(proto, props: dict[str, str]) -> None:
    """Merge string key/values into the model's metadata_props (existing keys are replaced)."""
    keep = {p.key: p.value for p in proto.metadata_props}
    keep.update({k: str(v) for k, v in props.items()})
    del proto.metadata_props[:]
    for k, v in keep.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v

