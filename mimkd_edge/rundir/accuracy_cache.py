"""Test accuracy of exported artifacts, cached beside them by sha256 × backend.

An INT8 graph may give different logits on onnxruntime and OpenVINO, and an IR computed in bf16 is
its own entry ("openvino@bf16"). Each entry records the test split it was measured on (source and
size); an entry for another split is a miss. The file is rewritten atomically; a corrupt cache is
only a cache: it is measured again and rewritten.

A cache is a file anyone can edit, so an entry is reported only when it checks out: its counts are
integers (0 <= correct <= images, images the split's size), its accuracy is 100 · correct / images,
it names the artifact hash and backend it is filed under, and its `seal` (a sha256 over the hash,
backend, split and counts) matches. Anything else (a hand-edited figure, an entry copied under
another artifact, a value of the wrong type) is a miss: measured again, never reported. The seal is
not a signature (whoever reads this code can recompute it): it turns edits and mix-ups into misses.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..atomic import write_json
from .layout import accuracy_cache_path

SCHEMA = 2  # 2: entries carry their counts and seal (schema-1 entries are measured again)


@dataclass(frozen=True)
class CachedAccuracy:
    accuracy: float  # top-1 %, 100 · correct / images
    images: int
    split: dict[str, Any]  # {"source", "images"}: the test split it was measured on
    artifact: str = ""
    backend: str = ""
    inference_precision: str | None = None
    measured_at: str = ""
    cached: bool = False  # True when read back rather than measured now
    correct: int = 0


def seal(sha256: str, backend: str, split: dict[str, Any], correct: int, images: int) -> str:
    """What binds an entry to the artifact, backend and split it claims to be of, and to its counts."""
    return hashlib.sha256(json.dumps([sha256, backend, split, correct, images], sort_keys=True).encode()).hexdigest()


class AccuracyCache:
    """{sha256: {backend: entry}} in the export folder."""

    def __init__(self, export_folder: str | Path):
        self.path = accuracy_cache_path(export_folder)
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            loaded = None
        entries = loaded.get("entries") if isinstance(loaded, dict) else None
        self.entries: dict[str, dict[str, dict]] = {
            sha: dict(by_backend) for sha, by_backend in (entries.items() if isinstance(entries, dict) else ())
            if isinstance(by_backend, dict)}

    def lookup(self, sha256: str, backend: str, split: dict[str, Any]) -> CachedAccuracy | None:
        """The entry for this artifact, backend and split, if it checks out (module docstring); else None."""
        entry = self.entries.get(sha256, {}).get(backend)
        if not _checks_out(entry, sha256, backend, split):
            return None
        inference = entry.get("inference_precision")
        return CachedAccuracy(100.0 * entry["correct"] / entry["images"], entry["images"], split,
                              str(entry.get("artifact", "")), backend,
                              inference if isinstance(inference, str) else None, str(entry.get("measured_at", "")),
                              cached=True, correct=entry["correct"])

    def store(self, sha256: str, backend: str, correct: int, images: int, split: dict[str, Any], *,
              artifact: str = "", inference_precision: str | None = None) -> CachedAccuracy:
        """Record a measurement (`correct` of `images` test images) and rewrite the file."""
        entry = CachedAccuracy(100.0 * correct / images, images, split, artifact, backend, inference_precision,
                               time.strftime("%Y-%m-%dT%H:%M:%S%z"), correct=correct)
        record = asdict(entry)
        record.pop("cached")
        record.update(sha256=sha256, seal=seal(sha256, backend, split, correct, images))
        self.entries.setdefault(sha256, {})[backend] = record
        write_json(self.path, {"schema": SCHEMA, "entries": self.entries})
        return entry


def _checks_out(entry: Any, sha256: str, backend: str, split: dict[str, Any]) -> bool:
    if not isinstance(entry, dict) or entry.get("split") != split:
        return False
    if entry.get("sha256") != sha256 or entry.get("backend") != backend:
        return False
    correct, images = entry.get("correct"), entry.get("images")
    if not _counts(correct, images, split):
        return False
    accuracy = entry.get("accuracy")
    if not _number(accuracy) or not 0.0 <= accuracy <= 100.0 or abs(accuracy - 100.0 * correct / images) > 1e-9:
        return False
    return entry.get("seal") == seal(sha256, backend, split, correct, images)


def _counts(correct: Any, images: Any, split: dict[str, Any]) -> bool:
    """Integers (not booleans), 0 <= correct <= images, and images the split's size when it says one."""
    if type(correct) is not int or type(images) is not int or not 0 <= correct <= images or images < 1:
        return False
    return not isinstance(split.get("images"), int) or images == split["images"]


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)
