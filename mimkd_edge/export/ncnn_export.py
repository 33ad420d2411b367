"""PyTorch student → ncnn graph (`.ncnn.param` + `.ncnn.bin`) with pnnx, plus its sidecar metadata.

pnnx traces the module with TorchScript and converts the trace. We run its converter binary
(`pnnx.EXEC_PATH`) on a trace we save ourselves, in a temporary folder, rather than `pnnx.export`:
- `pnnx.export` then imports the Python model file it generated, which is a syntax error for a model
  whose own children are named `0`, `1`, … (an nn.Sequential at the top: `self.0 = ...`; measured with
  pnnx 20261020: SyntaxError in model_pnnx.py). That file is not needed for ncnn and is never imported
  here, so such a model converts (tests/export/test_edge_export.py); no rename of the module is needed;
- the binary's output (FLOP counts, progress) stays out of the caller's output, and its failure becomes
  one line.
`fp16=0`: pnnx's default stores the weights in fp16, which would break FP32 parity; the FP16 artifact
asks for fp16 storage on purpose. The graph takes one image (C, H, W): ncnn has no batch axis.
Written into the export's staging folder: .bin, then sidecar, then .param, each renamed into place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from torch import nn

from ..errors import UserError, one_line
from ..runtime.ncnn_session import ncnn_weights_path
from ..runtime.sidecar import sidecar_path, sidecar_text
from .quiet import quiet

CONVERT_TIMEOUT_S = 600


def export_ncnn(model: nn.Module, param_path: str | Path, *, input_shape: tuple[int, int, int], fp16: bool,
                metadata: dict[str, str], name: str = "model") -> list[Path]:
    """Convert `model` (eval, CPU, fp32; forward(x) → logits) to `param_path` + its .bin + its sidecar;
    returns the three paths, graph first. A conversion pnnx refuses is a UserError naming `name`."""
    import pnnx
    import torch

    param_path = Path(param_path)
    param_path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, *input_shape)
    with tempfile.TemporaryDirectory(dir=param_path.parent, prefix=".pnnx.") as tmp:
        work = Path(tmp).resolve()  # pnnx runs in it: every path it is given must not depend on the cwd
        try:
            with quiet("torch", "torch.jit"), torch.no_grad():
                torch.jit.trace(model.eval(), (example,), check_trace=True).save(str(work / "model.pt"))
        except Exception as e:
            raise UserError(f"{name}: TorchScript cannot trace this model for pnnx ({one_line(e)}); "
                            "try --no-rewrite") from None
        shape = ",".join(str(d) for d in example.shape)
        outputs = {key: work / f"model.{key}" for key in ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx",
                                                          "ncnnparam", "ncnnbin", "ncnnpy")}
        command = [pnnx.EXEC_PATH, str(work / "model.pt"), f"inputshape=[{shape}]f32", "device=cpu",
                   *(f"{key}={path}" for key, path in outputs.items()), f"fp16={int(fp16)}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False,
                              cwd=work)
        graph, weights = outputs["ncnnparam"], outputs["ncnnbin"]
        if done.returncode != 0 or not graph.is_file() or not weights.is_file():
            said = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            raise UserError(f"{name}: pnnx cannot convert this model (exit {done.returncode}: "
                            f"{said[-1][:200] if said else 'no output'})")
        (work / "sidecar").write_text(sidecar_text(metadata), encoding="utf-8")
        targets = [(weights, ncnn_weights_path(param_path)), (work / "sidecar", sidecar_path(param_path)),
                   (graph, param_path)]  # the graph last: a .param never points at a missing .bin
        for written, target in targets:
            with open(written, "rb+") as f:
                os.fsync(f.fileno())
            shutil.move(written, target)
    return [param_path, ncnn_weights_path(param_path), sidecar_path(param_path)]
