"""Run an exported artifact on image files, from the artifact alone, without torch.

    session, info = open_artifact("model_int8.onnx", threads=1)
    for p in predict_files(session, info, image_files(["photos/"]), top_k=3):
        print(p.path, p.top)            # [("cat", 0.91), ("dog", 0.05), ...]

Everything inference needs is read from the artifact's own metadata (ONNX metadata_props, OpenVINO
rt_info, the sidecar JSON beside an ncnn graph or an ExecuTorch program; export/pipeline.py writes the
same keys to all): input geometry, colour mode, resize rule,
mean/std or that they are baked into the graph, class names in label order, the producing recipe and
its hash. Images are decoded and normalised by mimkd_edge.imaging, the code training reads them
with, so a prediction here is the prediction the bench's accuracy measured.

Metadata is a file's say, not a fact: each key is checked for its type and range (class names are
strings, sizes positive, mean/std finite with std > 0, one per channel), against the graph (its input
is a 4-D image batch of that size, it has one output per class name), and outputs that are not finite
are refused; each failure is one line naming the file, never a traceback or a "nan %".
Imports: numpy, Pillow and the artifact's runtime (onnxruntime for .onnx, openvino for an IR, ncnn for a
.param graph, executorch — which needs torch — for a .pte program).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from ..errors import UserError
from ..imaging import RESIZE_RULE, decode_images
from .accuracy import is_baked, model_inputs
from .backends import PREDICT_THREADS, PREDICT_TOP_K
from .session import ArtifactBytes, Session, open_session

REQUIRED_KEYS = ("classes", "input_size", "normalisation_baked", "mean", "std")
BACKEND_BY_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino", ".param": "ncnn", ".pte": "executorch"}
PREDICT_BATCH = 64
MAX_SIZE = 4096  # pixels per side, as data.image_size allows


@dataclass(frozen=True)
class ArtifactInfo:
    """What an artifact says about its own input and output."""

    classes: list[str]  # label order
    channels: int
    size: int
    baked: bool  # the graph scales and normalises raw pixels itself
    mean: list[float]
    std: list[float]
    colour_mode: str  # "RGB" | "L"
    resize: str
    recipe_name: str
    recipe_sha256: str

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path) -> ArtifactInfo:
        """What the metadata says, each key checked for type and range (one UserError naming the key)."""
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise UserError(f"{path}: the artifact does not describe its input (no {', '.join(missing)} in its "
                            "metadata); export it with `mimkd-edge export`")
        channels, size = _input_size(meta, path)
        return cls(classes=_class_names(meta, path), channels=channels, size=size,
                   baked=is_baked(meta), mean=_per_channel(meta, "mean", channels, path),
                   std=_per_channel(meta, "std", channels, path),
                   colour_mode=meta.get("colour_mode", "L" if channels == 1 else "RGB"),
                   resize=meta.get("resize", RESIZE_RULE),
                   recipe_name=meta.get("recipe_name", ""), recipe_sha256=meta.get("recipe_sha256", ""))

    def check_graph(self, session: Session, path: Path) -> None:
        """The graph takes what the metadata describes: a 4-D (N, C, H, W) batch of that C, H, W."""
        shape = tuple(session.input_shape)
        if len(shape) != 4:
            raise UserError(f"{path}: its graph takes a {len(shape)}-D input; an image classifier of this tool takes "
                            "a 4-D (N, C, H, W) batch")
        said = (self.channels, self.size, self.size)
        if any(d is not None and d != s for d, s in zip(shape[1:], said, strict=True)):
            taken = tuple("?" if d is None else d for d in shape[1:])
            raise UserError(f"{path}: its metadata says input_size {said}, its graph takes {taken}; export it again")

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) → what this artifact takes."""
        return model_inputs(images, self.mean, self.std, baked=self.baked)


def _metadata_json(meta: dict[str, str], key: str, path: Path):
    try:
        return json.loads(meta[key])
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: metadata `{key}` is not JSON ({e})") from None


def _input_size(meta: dict[str, str], path: Path) -> tuple[int, int]:
    """(channels, side) from `input_size`: [1 or 3, side, side], side 1 to MAX_SIZE."""
    v = _metadata_json(meta, "input_size", path)
    if not (isinstance(v, list) and len(v) == 3 and all(type(d) is int for d in v)
            and v[0] in (1, 3) and all(1 <= d <= MAX_SIZE for d in v[1:])):
        raise UserError(f"{path}: metadata `input_size` must be [channels (1 or 3), height, width] with sides of 1 to "
                        f"{MAX_SIZE} pixels, got {meta['input_size'][:60]!r}")
    if v[1] != v[2]:
        raise UserError(f"{path}: metadata `input_size` is {v[1]}×{v[2]}; this tool exports square inputs only")
    return v[0], v[1]


def _class_names(meta: dict[str, str], path: Path) -> list[str]:
    v = _metadata_json(meta, "classes", path)
    if not (isinstance(v, list) and v and all(isinstance(c, str) for c in v)):
        raise UserError(f"{path}: metadata `classes` must be a non-empty list of class names (strings), "
                        f"got {meta['classes'][:60]!r}")
    return v


def _per_channel(meta: dict[str, str], key: str, channels: int, path: Path) -> list[float]:
    """`mean` or `std`: one finite number per channel (std > 0: it divides)."""
    v = _metadata_json(meta, key, path)
    ok = (isinstance(v, list) and len(v) == channels and all(type(x) in (int, float) and math.isfinite(x) for x in v)
          and (key != "std" or all(x > 0 for x in v)))
    if not ok:
        rule = "positive" if key == "std" else "finite"
        raise UserError(f"{path}: metadata `{key}` must be {channels} {rule} number(s), one per channel, "
                        f"got {meta[key][:60]!r}")
    return [float(x) for x in v]


def deployed_artifact(run: str | Path, precision: str | None = None) -> tuple[ArtifactBytes, str, dict]:
    """(artifact, backend, choice) that RUN's latest benchmark chose to deploy (`runtime.choice`): for
    `precision` ("fp32", "bf16", "int8"), or the fastest of its choices. Refused when the export is older
    than the run's weights or recipe; the artifact's bytes are read once and checked against the manifest's
    hash, and the session is built from them."""
    from ..rundir import RunDir, verified_export
    from ..rundir.bench_results import read_deploy_choices
    from ..rundir.staleness import require_current
    from .artifacts import artifact_bytes

    choices = read_deploy_choices(run)
    if precision is not None:
        choices = [c for c in choices if c.get("precision") == precision]
        if not choices:
            raise UserError(f"{run}: its benchmark chose no {precision} artifact (see `choices` in its bench file)")
    choice = min(choices, key=lambda c: c["median_ms"])
    export, manifest = verified_export(RunDir(run).export)  # the previous export while a publish is under way
    require_current(run, manifest)
    match = [a for a in manifest.artifacts
             if a.name == choice["artifact"] and a.files[0].sha256 == choice.get("sha256")]
    if not match:
        raise UserError(f"{run}: the chosen artifact {choice['artifact']!r} is not the file its benchmark measured "
                        "(re-exported or removed since); run `mimkd-edge bench` on it again")
    return artifact_bytes(export, match[0]), choice["backend"], choice


def open_artifact(artifact: str | Path | ArtifactBytes, *, threads: int = PREDICT_THREADS, backend: str | None = None,
                  compute: str = "f32") -> tuple[Session, ArtifactInfo]:
    """Open an exported .onnx (onnxruntime), .xml (OpenVINO IR), .param (ncnn) or .pte (ExecuTorch) file, or its
    bytes already read;
    `backend` forces one. `compute` is OpenVINO's inference precision hint ("bf16": a deployment choice
    of the bf16 class). Its metadata is checked, and checked against the graph."""
    path = artifact.path if isinstance(artifact, ArtifactBytes) else Path(artifact)
    backend = backend or BACKEND_BY_SUFFIX.get(path.suffix.lower())
    if backend is None:
        raise UserError(f"{path}: expected an exported artifact: {', '.join(BACKEND_BY_SUFFIX)}")
    if backend == "torch":
        raise UserError("--backend torch: predict runs exported artifacts; use one of "
                        f"{', '.join(dict.fromkeys(BACKEND_BY_SUFFIX.values()))}")
    session = open_session(artifact if isinstance(artifact, ArtifactBytes) else path, backend, threads=threads,
                           inference_precision=compute)
    info = ArtifactInfo.from_metadata(session.metadata, path)
    info.check_graph(session, path)
    return session, info


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), most probable first

    @property
    def label(self) -> str:
        return self.top[0][0]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def predict_files(session: Session, info: ArtifactInfo, files: Sequence[Path], *, top_k: int = PREDICT_TOP_K,
                  batch_size: int = PREDICT_BATCH) -> list[Prediction]:
    """Top-k classes with probabilities for each file, in order (argmax ties go to the lower label,
    as everywhere else in the tool)."""
    k = max(1, min(top_k, len(info.classes)))
    out: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = list(files[start:start + batch_size])
        images = decode_images(chunk, info.size, info.channels)
        probs = softmax(_checked_logits(session, info, info.inputs(images)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        for path, row, idx in zip(chunk, probs, order, strict=True):
            out.append(Prediction(str(path), [(info.classes[i], float(row[i])) for i in idx]))
    return out


def _checked_logits(session: Session, info: ArtifactInfo, x: np.ndarray) -> np.ndarray:
    """The graph's logits for `x`: one per class name, every one finite (else one line naming the file)."""
    logits = np.asarray(session.run(x))
    if logits.ndim != 2 or logits.shape[1] != len(info.classes):
        outputs = logits.shape[1] if logits.ndim == 2 else f"an output of shape {logits.shape} instead of"
        raise UserError(f"{session.source}: its metadata has {len(info.classes)} class names for {outputs} outputs; "
                        "export it again")
    if not np.isfinite(logits).all():
        raise UserError(f"{session.source}: the model returned non-finite outputs (NaN or infinity); its weights or "
                        "its normalisation are broken, export it again")
    return logits


@dataclass(frozen=True)
class Throughput:
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else math.inf


def timed_predict(session: Session, info: ArtifactInfo, files: Sequence[Path], *, top_k: int = PREDICT_TOP_K,
                  batch_size: int = PREDICT_BATCH) -> tuple[list[Prediction], Throughput]:
    """`predict_files`, and the end-to-end rate (decode + normalise + run) it reached."""
    started = time.perf_counter()
    predictions = predict_files(session, info, files, top_k=top_k, batch_size=batch_size)
    return predictions, Throughput(len(files), time.perf_counter() - started)
