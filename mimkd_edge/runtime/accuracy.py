"""The one evaluation path: uint8 images → model input → any Session → top-1 accuracy.

Every accuracy figure after training comes from `evaluate`: the export's PyTorch reference and each
artifact's accuracy in the manifest, and the bench's accuracy of each artifact on each backend. Its
inputs come from `model_inputs`: mimkd_edge.imaging's normalisation with the run's mean/std (the
formula of the training loader's test-time transform, bit for bit; `predict` uses it too), or pixels
scaled to [0, 1] when the artifact normalises itself (normalisation baked into the graph). The
trainer's per-epoch test accuracy runs the same transform through its device-resident loader (it
also needs the loss, on the GPU); the manifest records both figures (`pytorch.test_accuracy` and
`run_summary_test_accuracy`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..imaging import normalise, scale_raw
from .session import Session

if TYPE_CHECKING:
    from ..data import ImageSet

EVAL_BATCH = 256


def model_inputs(images, mean, std, *, baked: bool) -> np.ndarray:
    """uint8 (N, C, H, W) images (a tensor or an array) → the float32 NCHW input a model or artifact
    expects: imaging.normalise, bit-identical to the training loader's test-time transform (tested)."""
    pixels = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    return scale_raw(pixels) if baked else normalise(pixels, mean, std)


def is_baked(metadata: dict[str, str]) -> bool:
    """The artifact scales and normalises raw pixels itself (export --bake-normalisation), as its
    metadata (a session's `metadata`) says."""
    return str(metadata.get("normalisation_baked", "false")).lower() == "true"


@dataclass(frozen=True)
class Evaluation:
    accuracy: float  # top-1 %
    images: int
    correct: int
    seconds: float


def evaluate(session: Session, data: ImageSet, mean, std, *, baked: bool | None = None,
             batch_size: int = EVAL_BATCH, limit: int | None = None) -> Evaluation:
    """Top-1 accuracy of `session` on the split `data` (its first `limit` images if given), in order.

    `baked` defaults to what the artifact says of itself. A session opened with a static batch size
    is fed batches of exactly that size; the last one is zero-padded and the padding's outputs dropped.
    """
    baked = is_baked(session.metadata) if baked is None else baked
    fixed = session.static_batch
    step = fixed or batch_size
    n_total = len(data) if limit is None else min(limit, len(data))
    correct = 0
    started = time.perf_counter()
    for start in range(0, n_total, step):
        images = data.take(slice(start, min(start + step, n_total)))
        labels = data.labels[start:start + len(images)].numpy()
        x = model_inputs(images, mean, std, baked=baked)
        n = len(x)
        if fixed and n < fixed:
            x = np.concatenate([x, np.zeros((fixed - n, *x.shape[1:]), dtype=x.dtype)])
        correct += int((session.run(x)[:n].argmax(1) == labels).sum())
    if n_total == 0:
        raise ValueError("evaluate: the split is empty")
    return Evaluation(100.0 * correct / n_total, n_total, correct, round(time.perf_counter() - started, 3))
