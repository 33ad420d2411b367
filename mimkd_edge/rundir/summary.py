"""A run's summary and its per-epoch records, typed.

The summary is written once, when training ends; every later stage (export, bench, the protocol
tables, a distillation reading its teacher's accuracy) reads it through `read_summary`, so a renamed
field fails here, by name, instead of turning into None three modules away. Summaries written
before `schema` existed (the committed CPU-protocol runs) have the same fields and read as schema 1.

Each epoch is an `EpochRecord`: a line of the run's metrics file, an entry of the checkpoint's
history, the trainer's "epoch" event. Its fixed fields are named once, here; the method's columns
(each loss term and MI estimate) are its `terms`, in the order the trainer wrote them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json, write_text
from ..errors import UserError
from .layout import RunDir

SCHEMA = 1


@dataclass(frozen=True)
class StudentInfo:
    model: str
    params: int
    macs: int


@dataclass(frozen=True)
class DataInfo:
    dataset: str
    source: str  # where the images were read (absolute), or "synthetic"
    classes: list[str] = field(default_factory=list)
    train_size: int = 0
    test_size: int = 0
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    path: dict[str, str] | None = None  # split → "resident" | "streamed"


@dataclass(frozen=True)
class RunSummary:
    name: str
    method: str
    seed: int
    student: StudentInfo
    data: DataInfo
    epochs: int
    final_test_acc: float | None
    final_train_acc: float | None  # None for an imported teacher (not trained here)
    wall_seconds: float
    images_per_s: float
    device: str
    cpu: str | None = None  # provenance.cpu_name() where it finished (a resumed run may have begun elsewhere)
    teacher: dict | None = None  # model, checkpoint, sha256, recipe, test_acc of the teacher run
    best_test_acc: float | None = None  # selected on the test set: for reference only
    best_epoch: int | None = None
    versions: dict = field(default_factory=dict)
    git_commit: str | None = None
    finished_at: str = ""
    recipe_changes: list[dict] = field(default_factory=list)  # schedule keys changed at --resume
    provenance: dict | None = None  # weights imported, not trained: source file, sha256, format
    sessions: list[dict] = field(default_factory=list)  # commit, CPU, data hash of each start and resume
    final_val_acc: float | None = None  # on the validation split held out of the training images
    val_size: int = 0
    schema: int = SCHEMA

    @property
    def data_source(self) -> str | None:
        """Where the run's data was found (absolute), or None for synthetic data."""
        return self.data.source if self.data.source not in ("synthetic", "") else None

    @property
    def test_split(self) -> dict[str, Any]:
        """What identifies the test split an accuracy was measured on: its source and size."""
        return {"source": str(self.data.source), "images": int(self.data.test_size)}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: Path) -> RunSummary:
        try:
            return _build(cls, raw, {"student": StudentInfo, "data": DataInfo})
        except (TypeError, ValueError) as e:
            raise UserError(f"{where}: not a run summary of this tool ({e})") from None


def _build(cls, raw: Any, nested: dict[str, type]):
    if not isinstance(raw, dict):
        raise TypeError(f"expected a JSON object, found {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in raw.items() if k in known}
    for key, sub in nested.items():
        if key in values:
            values[key] = _build(sub, values[key], {})
    return cls(**values)  # a missing required field is a TypeError naming it


def write_summary(run: str | Path, summary: RunSummary) -> None:
    write_json(RunDir(run).summary, summary.to_dict())


def read_summary(run: str | Path) -> RunSummary:
    path = RunDir(run).summary
    if not path.is_file():
        raise UserError(f"{path.parent}: no {path.name} in this run (did it finish?)")
    return RunSummary.from_dict(read_json(path), path)


EPOCH_SCHEMA = 1  # a record of schema 1 carries no "schema" key: byte for byte the lines written before it was typed


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training: its schedule, the means over its images, and the evaluations run after it."""

    epoch: int  # 1-based (the checkpoint's `epoch` is the 0-based index of the last one done)
    lr: float  # the learning rate the epoch started with
    steps: int
    terms: dict[str, float]  # "loss" (the total), each weighted term and each MI estimate: means over the images
    train_acc: float
    seconds: float
    images_per_s: float
    val_acc: float | None = None  # evaluated epochs only (train.eval_every, the last); val: when held out
    val_loss: float | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    schema: int = EPOCH_SCHEMA

    @property
    def loss(self) -> float:
        return self.terms["loss"]

    @property
    def evaluated(self) -> bool:
        return self.test_acc is not None

    def to_dict(self) -> dict[str, Any]:
        """The metrics line: epoch, lr, steps, the terms, train_acc, seconds, images_per_s, then the
        validation and test pairs where evaluated (the trainer's order since the first metrics file)."""
        out: dict[str, Any] = {"epoch": self.epoch, "lr": self.lr, "steps": self.steps, **self.terms,
                               "train_acc": self.train_acc, "seconds": self.seconds, "images_per_s": self.images_per_s}
        for acc, loss in (("val_acc", "val_loss"), ("test_acc", "test_loss")):
            if getattr(self, acc) is not None:
                out[acc], out[loss] = getattr(self, acc), getattr(self, loss)
        if self.schema != 1:
            out["schema"] = self.schema
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str | Path = "epoch record") -> EpochRecord:
        """A metrics line (or a checkpoint's history entry) of any schema this version reads."""
        named = {f.name for f in fields(cls)} - {"terms"}
        try:
            if not isinstance(raw, dict):
                raise TypeError(f"expected a JSON object, found {type(raw).__name__}")
            if raw.get("schema", 1) > EPOCH_SCHEMA:
                raise ValueError(f"schema {raw['schema']}, written by a newer mimkd-edge (this one reads "
                                 f"{EPOCH_SCHEMA})")
            return cls(**{k: v for k, v in raw.items() if k in named},
                       terms={k: v for k, v in raw.items() if k not in named})
        except (TypeError, ValueError) as e:
            raise UserError(f"{where}: not an epoch record of this tool ({e})") from None


def write_metrics(run: str | Path, history: list[EpochRecord]) -> None:
    write_text(RunDir(run).metrics, "".join(json.dumps(r.to_dict()) + "\n" for r in history))


def read_metrics(run: str | Path) -> list[EpochRecord]:
    path = RunDir(run).metrics
    try:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable metrics ({e})") from None
    return [EpochRecord.from_dict(line, f"{path}, record {i + 1}") for i, line in enumerate(lines)]
