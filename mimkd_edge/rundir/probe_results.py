"""Linear-probe results kept with the run: one entry per probe data set (keyed by its source), so
probing on STL-10 and on an image folder keeps both."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..atomic import read_json, write_json
from ..errors import UserError
from .layout import RunDir

SCHEMA = 1


@dataclass(frozen=True)
class ProbeResult:
    run: str
    student: str
    method: str
    seed: int
    run_test_accuracy: float | None  # the student on its own task, for reference
    dataset: str
    source: str  # where the probe data was read
    classes: int
    train_images: int
    test_images: int
    feature_dim: int
    geometry: list[int]  # [channels, height, width] the probe data was read at (the student's)
    weight_decay: float
    holdout_accuracy: dict  # weight decay → accuracy on the held-out tenth of the probe's train split
    train_accuracy: float
    test_accuracy: float
    seconds: float
    measured_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    source_geometry: list[int] | None = None  # [channels, height, width] of the probe images as stored


def write_probe_result(run: str | Path, result: ProbeResult) -> Path:
    path = RunDir(run).probe
    entries = read_json(path).get("entries", {}) if path.is_file() else {}
    entries[result.source] = asdict(result)
    write_json(path, {"schema": SCHEMA, "entries": entries})
    return path


def read_probe_results(run: str | Path) -> list[ProbeResult]:
    path = RunDir(run).probe
    if not path.is_file():
        return []
    known = {f.name for f in fields(ProbeResult)}
    try:
        return [ProbeResult(**{k: v for k, v in e.items() if k in known})
                for e in read_json(path).get("entries", {}).values()]
    except (TypeError, AttributeError) as e:
        raise UserError(f"{path}: not a probe result of this tool ({e})") from None
