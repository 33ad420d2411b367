"""Test accuracy of exported artifacts, cached beside them by sha256 × backend.

An INT8 graph may give different logits on onnxruntime and OpenVINO, and an IR computed in bf16 is
its own entry ("openvino@bf16"). Each entry records the test split it was measured on (source and
size); an entry for another split is a miss. The file is rewritten atomically; a corrupt cache is
only a cache: it is measured again and rewritten.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..atomic import write_json
from .layout import accuracy_cache_path

SCHEMA = 1


@dataclass(frozen=True)
class CachedAccuracy:
    accuracy: float  # top-1 %
    images: int
    split: dict[str, Any]  # {"source", "images"}: the test split it was measured on
    artifact: str = ""
    backend: str = ""
    inference_precision: str | None = None
    measured_at: str = ""
    cached: bool = False  # True when read back rather than measured now


class AccuracyCache:
    """{sha256: {backend: entry}} in the export folder."""

    def __init__(self, export_folder: str | Path):
        self.path = accuracy_cache_path(export_folder)
        self.entries: dict[str, dict[str, dict]] = {}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            self.entries = loaded.get("entries", {}) if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self.entries = {}

    def lookup(self, sha256: str, backend: str, split: dict[str, Any]) -> CachedAccuracy | None:
        entry = self.entries.get(sha256, {}).get(backend)
        if not isinstance(entry, dict) or entry.get("split") != split:
            return None
        known = {f.name for f in fields(CachedAccuracy)} - {"cached"}
        try:
            return CachedAccuracy(**{k: v for k, v in entry.items() if k in known}, cached=True)
        except TypeError:
            return None  # an entry of another layout: measure again

    def store(self, sha256: str, backend: str, accuracy: float, images: int, split: dict[str, Any], *,
              artifact: str = "", inference_precision: str | None = None) -> CachedAccuracy:
        entry = CachedAccuracy(accuracy, images, split, artifact, backend, inference_precision,
                               time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        record = asdict(entry)
        record.pop("cached")
        self.entries.setdefault(sha256, {})[backend] = record
        write_json(self.path, {"schema": SCHEMA, "entries": self.entries})
        return entry
