"""ncnn sessions: an exported `.ncnn.param` graph with its `.ncnn.bin` weights, run by the `ncnn` wheel.

Needs only `ncnn` and numpy (no torch): the device runtime of `pip install ncnn`. The graph has no
metadata of its own; the artifact's keys (classes, geometry, normalisation) are its sidecar JSON
(runtime/sidecar.py). ncnn runs one image per call (its Mat has no batch axis), so a batch is run image
by image, in order. Options: `num_threads = threads`; fp16 and bf16 storage, packing and arithmetic
off, so every layer computes in f32 as the parity check against PyTorch assumes (an FP16 artifact's
weights are stored in fp16 and widened to f32 when loaded, as OpenVINO's FP16-compressed IRs are);
Winograd and the other convolution algorithms are ncnn's defaults (on: that is why ncnn can run a
dense 3×3 convolution below its direct-convolution FLOP bound).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError, one_line
from .session import ArtifactBytes, Session
from .sidecar import parse_sidecar

PARAM_SUFFIX = ".param"  # our files: model_fp32.ncnn.param + model_fp32.ncnn.bin (+ model_fp32.ncnn.param.json)
_REDUCED_PRECISION = ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage",
                      "use_bf16_packed")


def ncnn_weights_path(param: Path) -> Path:
    return param.with_suffix(".bin")


class NcnnSession(Session):
    backend = "ncnn"

    def __init__(self, source: Path | ArtifactBytes, *, threads: int = 1, static_batch: int | None = None):
        import ncnn

        path = source.path if isinstance(source, ArtifactBytes) else source
        if path.suffix != PARAM_SUFFIX:
            raise UserError(f"{path}: ncnn opens .param graphs (with their .bin), got {path.suffix or 'no suffix'}")
        param, weights, sidecar = _read(source, path)
        self.metadata = parse_sidecar(sidecar, path)
        self.precision = self.metadata.get("precision", "fp32")
        self.inference_precision = "fp32"
        net = ncnn.Net()
        net.opt.num_threads = threads
        for option in _REDUCED_PRECISION:
            setattr(net.opt, option, False)
        try:
            if net.load_param_mem(param.decode("utf-8")) != 0:
                raise ValueError("load_param_mem failed")
            net.load_model_mem(weights)
        except (ValueError, RuntimeError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: not a loadable ncnn model ({one_line(e)})") from None
        if len(net.input_names()) != 1 or len(net.output_names()) != 1:
            raise UserError(f"{path}: an ncnn graph with {len(net.input_names())} inputs and "
                            f"{len(net.output_names())} outputs; expected one image input and the logits")
        self._net, self._weights = net, weights  # ncnn may point into the weights' bytes: keep them alive
        self._mat = ncnn.Mat
        self.input_name, self._out = net.input_names()[0], net.output_names()[0]
        self.input_shape = (static_batch, *_geometry(self.metadata))
        self.source, self.threads, self.static_batch = str(path), threads, static_batch

    def _run(self, x: np.ndarray) -> np.ndarray:
        return np.stack([self._one(image) for image in x]) if len(x) > 1 else self._one(x[0])[None]

    def _one(self, image: np.ndarray) -> np.ndarray:
        """The logits of one (C, H, W) image: a fresh extractor per image, as ncnn intends."""
        ex = self._net.create_extractor()
        ex.input(self.input_name, self._mat(image))
        status, out = ex.extract(self._out)
        if status != 0:
            raise RuntimeError(f"{self.source}: ncnn failed on an input of shape {image.shape} (code {status})")
        return np.array(out, dtype=np.float32).reshape(-1)


def _read(source: Path | ArtifactBytes, path: Path) -> tuple[bytes, bytes, bytes | None]:
    """(graph, weights, sidecar or None to read from beside the file)."""
    if isinstance(source, ArtifactBytes):
        if source.weights is None:
            raise UserError(f"{path}: its weights file {ncnn_weights_path(path).name} was not read")
        return source.model, source.weights, source.sidecar
    weights = ncnn_weights_path(path)
    if not weights.is_file():
        raise UserError(f"{path}: its weights file {weights.name} is missing")
    return path.read_bytes(), weights.read_bytes(), None


def _geometry(metadata: dict[str, str]) -> tuple[int | None, int | None, int | None]:
    """(C, H, W) as the sidecar says, for `input_shape` (predict checks the keys themselves)."""
    import json

    try:
        c, h, w = json.loads(metadata.get("input_size", "null"))
        return int(c), int(h), int(w)
    except (TypeError, ValueError):
        return None, None, None
