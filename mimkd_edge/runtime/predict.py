"""Run an exported artifact on image files, from the artifact alone, without torch.

    session, info = open_artifact("model_int8.onnx", threads=1)
    for p in predict_files(session, info, image_files(["photos/"]), top_k=3):
        print(p.path, p.top)            # [("cat", 0.91), ("dog", 0.05), ...]

Everything inference needs is read from the artifact's own metadata (ONNX metadata_props, OpenVINO
rt_info; export/pipeline.py writes the same keys to both): input geometry, colour mode, resize rule,
mean/std or that they are baked into the graph, class names in label order, the producing recipe and
its hash. Images are decoded and normalised by mimkd_edge.imaging, the code training reads them
with, so a prediction here is the prediction the bench's accuracy measured.
Imports: numpy, Pillow and the artifact's runtime (onnxruntime, or openvino for an IR).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..imaging import RESIZE_RULE, decode_images
from .accuracy import is_baked, model_inputs
from .session import Session, open_session

REQUIRED_KEYS = ("classes", "input_size", "normalisation_baked", "mean", "std")
BACKEND_BY_SUFFIX = {".onnx": "onnxruntime", ".xml": "openvino"}
PREDICT_BATCH = 64


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
        missing = [k for k in REQUIRED_KEYS if k not in meta]
        if missing:
            raise UserError(f"{path}: the artifact does not describe its input (no {', '.join(missing)} in its "
                            "metadata); export it with `mimkd-edge export`")
        try:
            channels, height, width = json.loads(meta["input_size"])
            classes, mean, std = json.loads(meta["classes"]), json.loads(meta["mean"]), json.loads(meta["std"])
        except (ValueError, TypeError) as e:
            raise UserError(f"{path}: unreadable input description in its metadata ({e})") from None
        if height != width:
            raise UserError(f"{path}: input {height}×{width}; this tool exports square inputs only")
        return cls(classes=list(classes), channels=int(channels), size=int(height),
                   baked=is_baked(meta), mean=list(mean), std=list(std),
                   colour_mode=meta.get("colour_mode", "L" if channels == 1 else "RGB"),
                   resize=meta.get("resize", RESIZE_RULE),
                   recipe_name=meta.get("recipe_name", ""), recipe_sha256=meta.get("recipe_sha256", ""))

    def inputs(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, C, H, W) → what this artifact takes."""
        return model_inputs(images, self.mean, self.std, baked=self.baked)


def deployed_artifact(run: str | Path, precision: str | None = None) -> tuple[Path, str, dict]:
    """(artifact file, backend, choice) that RUN's latest benchmark chose to deploy (`runtime.choice`):
    for `precision` ("fp32", "bf16", "int8"), or the fastest of its choices. The file is checked against the
    export manifest's hash."""
    from ..rundir import RunDir, load_verified
    from ..rundir.bench_results import read_deploy_choices

    choices = read_deploy_choices(run)
    if precision is not None:
        choices = [c for c in choices if c.get("precision") == precision]
        if not choices:
            raise UserError(f"{run}: its benchmark chose no {precision} artifact (see `choices` in its bench file)")
    choice = min(choices, key=lambda c: c["median_ms"])
    manifest = load_verified(RunDir(run).export)
    match = [a for a in manifest.artifacts
             if a.name == choice["artifact"] and a.files[0].sha256 == choice.get("sha256")]
    if not match:
        raise UserError(f"{run}: the chosen artifact {choice['artifact']!r} is not the file its benchmark measured "
                        "(re-exported or removed since); run `mimkd-edge bench` on it again")
    return RunDir(run).export / match[0].path, choice["backend"], choice


def open_artifact(path: str | Path, *, threads: int = 1, backend: str | None = None,
                  compute: str = "f32") -> tuple[Session, ArtifactInfo]:
    """Open an exported .onnx (onnxruntime) or .xml (OpenVINO IR) file; `backend` forces one. `compute`
    is OpenVINO's inference precision hint ("bf16": a deployment choice of the bf16 class)."""
    path = Path(path)
    backend = backend or BACKEND_BY_SUFFIX.get(path.suffix.lower())
    if backend is None:
        raise UserError(f"{path}: expected an exported .onnx or .xml artifact")
    if backend == "torch":
        raise UserError("--backend torch: predict runs exported artifacts; use onnxruntime or openvino")
    session = open_session(path, backend, threads=threads, inference_precision=compute)
    return session, ArtifactInfo.from_metadata(session.metadata, path)


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


def predict_files(session: Session, info: ArtifactInfo, files: Sequence[Path], *, top_k: int = 5,
                  batch_size: int = PREDICT_BATCH) -> list[Prediction]:
    """Top-k classes with probabilities for each file, in order (argmax ties go to the lower label,
    as everywhere else in the tool)."""
    k = max(1, min(top_k, len(info.classes)))
    out: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = list(files[start:start + batch_size])
        images = decode_images(chunk, info.size, info.channels)
        probs = softmax(session.run(info.inputs(images)))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        for path, row, idx in zip(chunk, probs, order, strict=True):
            out.append(Prediction(str(path), [(info.classes[i], float(row[i])) for i in idx]))
    return out


@dataclass(frozen=True)
class Throughput:
    images: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else math.inf


def timed_predict(session: Session, info: ArtifactInfo, files: Sequence[Path], *, top_k: int = 5,
                  batch_size: int = PREDICT_BATCH) -> tuple[list[Prediction], Throughput]:
    """`predict_files`, and the end-to-end rate (decode + normalise + run) it reached."""
    started = time.perf_counter()
    predictions = predict_files(session, info, files, top_k=top_k, batch_size=batch_size)
    return predictions, Throughput(len(files), time.perf_counter() - started)
