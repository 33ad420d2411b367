"""Top-1 accuracy of any Session on a run's test split, cached by the artifact's sha256.

    acc = evaluate_accuracy(session, splits)   # {"accuracy": 71.3, "images": 10000, ...}
    cache = AccuracyCache("runs/x/export/accuracy_cache.json")
    acc = cache.get_or_measure(sha, "onnxruntime", open_fn, load_splits_fn, split=run_split(summary))
    # evaluates (opening the session, loading the data) only on a miss

The images are prepared exactly as the trainer's test loader prepares them (`make_loader`, no
augmentation): normalised with the run's mean/std, or only scaled to [0, 1] when the artifact says
its graph normalises itself (`metadata["normalisation_baked"] == "true"`).

A cache entry is keyed by the artifact's sha256 and the backend that ran it (an INT8 graph may give
different logits on onnxruntime and OpenVINO; "openvino@bf16" for an IR computed in bf16), and records which test split it was measured on
(source and size); an entry for another split is a miss. The file is rewritten atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..engine.checkpoint import write_json
from .session import Session

EVAL_BATCH = 256
CACHE_NAME = "accuracy_cache.json"


def _baked(session: Session) -> bool:
    return str(session.metadata.get("normalisation_baked", "false")).lower() == "true"


def iter_test_batches(splits, batch_size: int, *, baked: bool):
    """(float32 NCHW numpy batch, int64 labels) over the whole test split, in order."""
    import torch

    from ..data import make_loader

    if baked:
        for images, labels in splits.test.chunks(batch_size):
            yield (images.float() / 255.0).numpy(), labels.numpy()
        return
    loader = make_loader(splits.test, batch_size, splits.mean, splits.std, train=False, augment=False)
    with torch.no_grad():
        for x, y, _ in loader.epoch(0):
            yield x.contiguous().numpy(), y.numpy()


def evaluate_accuracy(session: Session, splits, *, batch_size: int = EVAL_BATCH, limit: int | None = None) -> dict[str, Any]:
    """Top-1 accuracy (%) of `session` on `splits.test` (the first `limit` images if given).

    A session opened with a static batch size is fed batches of exactly that size; the last one is
    zero-padded and the padding's outputs dropped.
    """
    fixed = session.static_batch
    step = fixed or batch_size
    correct = seen = 0
    started = time.perf_counter()
    for x, y in iter_test_batches(splits, step, baked=_baked(session)):
        if limit is not None and seen >= limit:
            break
        if limit is not None and seen + len(y) > limit:
            x, y = x[:limit - seen], y[:limit - seen]
        n = len(y)
        if fixed and n < fixed:
            x = np.concatenate([x, np.zeros((fixed - n, *x.shape[1:]), dtype=x.dtype)])
        pred = session.run(x)[:n].argmax(1)
        correct += int((pred == y).sum())
        seen += n
    if seen == 0:
        raise ValueError("evaluate_accuracy: the test split is empty")
    return {"accuracy": 100.0 * correct / seen, "images": seen, "correct": correct,
            "seconds": round(time.perf_counter() - started, 3)}


def split_fingerprint(splits) -> dict[str, Any]:
    """What identifies a test split well enough to reuse an accuracy measured on it: where the images
    came from and how many (the same two fields a run's summary.json records under "data")."""
    return {"source": str(splits.source), "images": int(len(splits.test))}


def run_split(summary: dict) -> dict[str, Any] | None:
    """The split fingerprint of a run's test set, from its summary.json (no data loaded)."""
    data = summary.get("data") or {}
    if "source" not in data or "test_size" not in data:
        return None
    return {"source": str(data["source"]), "images": int(data["test_size"])}


class AccuracyCache:
    """JSON file {sha256: {backend: entry}}; entry = accuracy, images, split, artifact, measured_at."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data: dict[str, dict[str, dict]] = {}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                self.data = loaded.get("entries", {}) if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.data = {}  # a corrupt cache is only a cache: measure again and rewrite it

    def lookup(self, sha256: str, backend: str, split: dict[str, Any] | None = None) -> dict | None:
        entry = self.data.get(sha256, {}).get(backend)
        if entry is None:
            return None
        if split is not None and entry.get("split") != split:
            return None
        return entry

    def store(self, sha256: str, backend: str, entry: dict) -> None:
        self.data.setdefault(sha256, {})[backend] = entry
        write_json(self.path, {"schema": 1, "entries": self.data})

    def get_or_measure(self, sha256: str, backend: str, session_factory: Callable[[], Session],
                       splits_factory: Callable[[], Any], *, artifact: str = "",
                       split: dict[str, Any] | None = None) -> dict:
        """The cached entry, or evaluate (opening the session and loading the split only then)."""
        if split is not None:
            hit = self.lookup(sha256, backend, split)
            if hit is not None:
                return {**hit, "cached": True}
        splits = splits_factory()
        split = split_fingerprint(splits)
        hit = self.lookup(sha256, backend, split)
        if hit is not None:
            return {**hit, "cached": True}
        session = session_factory()
        result = evaluate_accuracy(session, splits)
        entry = {"accuracy": result["accuracy"], "images": result["images"], "split": split,
                 "artifact": artifact, "backend": backend, "inference_precision": session.inference_precision,
                 "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.store(sha256, backend, entry)
        return {**entry, "cached": False}
