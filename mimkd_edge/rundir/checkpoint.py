"""Checkpoints and weights: written atomically, read without ever unpickling code.

A checkpoint is a typed `Checkpoint`: everything a run needs to go on after its last finished epoch (the
student's, the method's, the optimiser's and the scheduler's states, the random generators, the epoch
records so far, the recipe it trained with, its sessions). On disk it is a torch file of tensors and
plain containers, loaded with `weights_only=True`, with the keys it has had since the first version (a
file of schema 1 has no "schema" key and reads the same), so a run checkpointed by an older version
resumes under this one. Weights are safetensors, checked by name and shape before they are loaded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, load_file, save_file

from ..atomic import atomic_write
from ..errors import UserError, one_line
from .summary import EpochRecord

CHECKPOINT_SCHEMA = 2  # 1: written before the record was typed, the same keys but "schema"
REQUIRED = ("epoch", "model", "method", "optimizer", "scheduler", "rng", "history")


@dataclass
class Checkpoint:
    """A run at the end of an epoch. `epoch` is that epoch's 0-based index, as the file has always kept it."""

    epoch: int
    model: dict[str, torch.Tensor]
    method: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]  # capture_rng()'s: torch's, Python's and (where present) CUDA's generator states
    history: list[EpochRecord]
    wall_seconds: float = 0.0
    recipe: str | None = None  # the recipe it trained with, as TOML (None in runs older than recorded changes)
    recipe_changes: list[dict] = field(default_factory=list)  # schedule keys changed at a resume
    sessions: list[dict] = field(default_factory=list)  # who trained it: commit, CPU, data, from which epoch
    schema: int = CHECKPOINT_SCHEMA

    @property
    def epochs_done(self) -> int:
        """Epochs trained so far: the first one a resume runs (0-based)."""
        return self.epoch + 1

    @classmethod
    def capture(cls, epoch: int, *, model: torch.nn.Module, method: torch.nn.Module,
                optimizer: torch.optim.Optimizer, scheduler: Any, history: list[EpochRecord], **rest) -> Checkpoint:
        """The states of the objects that train, and the random generators, as they are now."""
        return cls(epoch, model.state_dict(), method.state_dict(), optimizer.state_dict(), scheduler.state_dict(),
                   capture_rng(), list(history), **rest)

    def restore(self, *, model: torch.nn.Module, method: torch.nn.Module, where: str | Path,
                optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, rng: bool = True) -> None:
        """Load the states into the objects given (the optimiser and scheduler when given) and, with `rng`,
        set the random generators; a state that does not fit is one line naming `where`."""
        try:
            model.load_state_dict(self.model)
            method.load_state_dict(self.method)
            if optimizer is not None:
                optimizer.load_state_dict(self.optimizer)
            if scheduler is not None:
                scheduler.load_state_dict(self.scheduler)
            if rng:
                restore_rng(self.rng)
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"{where}: checkpoint does not match this recipe ({one_line(e)})") from None

    def to_state(self) -> dict[str, Any]:
        """What the file holds: tensors and plain containers, the history as its metrics lines."""
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        state["history"] = [r.to_dict() for r in self.history]
        return state

    @classmethod
    def from_state(cls, state: Any, where: str | Path) -> Checkpoint:
        missing = [k for k in REQUIRED if k not in state] if isinstance(state, dict) else list(REQUIRED)
        if missing or not isinstance(state["epoch"], int) or not isinstance(state["history"], list):
            raise UserError(f"{where}: not a checkpoint of this tool (expected a table with {', '.join(REQUIRED)}; "
                            f"{'missing ' + ', '.join(missing) if missing else 'epoch/history of the wrong type'})")
        if state.get("schema", 1) > CHECKPOINT_SCHEMA:
            raise UserError(f"{where}: a checkpoint of schema {state['schema']}, written by a newer mimkd-edge "
                            f"(this one reads up to {CHECKPOINT_SCHEMA}); resume it with that version")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in state.items() if k in known}
        values["history"] = [EpochRecord.from_dict(r, f"{where}, history") for r in state["history"]]
        values["schema"] = CHECKPOINT_SCHEMA  # read: it is now a record of this schema, and is saved as one
        values["wall_seconds"] = float(values.get("wall_seconds", 0.0))
        values["recipe_changes"] = list(values.get("recipe_changes") or [])
        values["sessions"] = list(values.get("sessions") or [])
        return cls(**values)


def capture_rng() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]  # weights_only loading may turn its tuples into lists
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    state = checkpoint.to_state()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Tensors and plain containers only (`weights_only=True`): a checkpoint cannot run code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: unreadable checkpoint ({one_line(e)})") from None
    return Checkpoint.from_state(state, path)


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights(path: str | Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, or of its `data` already read (so a caller can hash what it loads)."""
    try:
        return load_file(str(path), device="cpu") if data is None else load(data)
    except Exception as e:
        raise UserError(f"{path}: unreadable weights file ({one_line(e)})") from None


def load_model_weights(model: torch.nn.Module, path: str | Path, what: str, data: bytes | None = None) -> None:
    """Load a weights file (or its `data`, read from `path`) strictly: names and shapes (see `load_state`)."""
    load_state(model, load_weights(path, data), path, what)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str | Path, what: str) -> None:
    """Load a state dict strictly: names and shapes. A mismatch is one line naming `where` and the
    first bad keys (a ResNet-8x4 given ResNet-20 weights, a 10-class head for num_classes = 5)."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state][:3]
    problems += [f"unexpected {k}" for k in state if k not in own][:3]
    problems += [f"{k} is {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
                 for k, v in own.items() if k in state and state[k].shape != v.shape][:3]
    if problems:
        raise UserError(f"{where}: weights do not fit {what} ({'; '.join(problems)})")
    model.load_state_dict(state)
