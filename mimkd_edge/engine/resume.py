"""What `--resume` may change, and how a change is applied and recorded.

A run is resumed from its checkpoint with the recipe given now. Keys that only steer the rest of
the schedule may differ from the checkpoint's recipe — the remedy for a run that diverged is to
resume it with a lower `train.lr` — and such a change is *applied* (the optimiser's learning rate,
momentum and weight decay, the scheduler's milestones and gamma are set from the new recipe at the
epoch resumed) and *recorded* (the run summary's `recipe_changes`, the epoch it took effect, old and new
value; recipe.toml then holds the new recipe). Any other difference — model, method, data, seed,
batch size, precision — would make the checkpoint's state mean something else, so it is refused.
`resume_run` restores a run's checkpoint (rundir/checkpoint.py) into a freshly built training and does both.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..data import resolve_recipe
from ..errors import UserError
from ..recipe import Recipe, parse_recorded_recipe, read_toml
from ..rundir import RunDir
from ..rundir.checkpoint import Checkpoint, load_checkpoint
from ..rundir.summary import EpochRecord
from .schedule import apply_schedule

if TYPE_CHECKING:
    from .trainer import Training

RESUMABLE = ("train.epochs", "train.lr", "train.momentum", "train.weight_decay", "train.milestones", "train.gamma",
             "train.warmup_epochs",
             "train.eval_every", "train.log_every", "train.compile", "train.device", "data.workers", "data.root")


def _flat(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def recipe_changes(old: Recipe, new: Recipe, epoch: int) -> list[dict]:
    """Keys whose values differ, as {"epoch", "key", "from", "to"} (epoch: the first one trained with `to`)."""
    a, b = _flat(old.to_table()), _flat(new.to_table())
    return [{"epoch": epoch + 1, "key": k, "from": a.get(k), "to": b.get(k)}
            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_changes(changes: list[dict], run: Path) -> None:
    refused = [c["key"] for c in changes if c["key"] not in RESUMABLE]
    if refused:
        raise UserError(f"{run}: --resume with a recipe that differs in {', '.join(refused)} from the run's; these "
                        f"cannot change mid-run (only {', '.join(RESUMABLE)} can): start a new run with another --out")


@dataclass
class Resumed:
    """Where a run goes on from: the first epoch to train (0-based), the records and wall time so far, the
    recipe changes and the sessions that trained it. A fresh run starts from the defaults."""

    start_epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    wall_seconds: float = 0.0
    changes: list[dict] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)


def resume_run(s: Training, out: Path, warn: Callable[[str], None]) -> Resumed:
    """Restore the run's checkpoint into `s`; apply and record the schedule changes made to the recipe
    since, refuse any other (`check_changes`); `warn` says which were applied."""
    path = RunDir(out).checkpoint
    ckpt = load_checkpoint(path)
    ckpt.restore(model=s.student, method=s.method, optimizer=s.optimizer, scheduler=s.scheduler, where=path)
    changes = list(ckpt.recipe_changes)
    new = recipe_changes(resolve_recipe(checkpoint_recipe(ckpt, out), s.splits), s.recipe, ckpt.epochs_done)
    check_changes(new, out)
    if new:
        apply_schedule(s.optimizer, s.scheduler, s.recipe.train, len(s.train_loader))
        changes += new
        warn("resumed with " + ", ".join(f"{c['key']} {c['from']} → {c['to']}" for c in new)
             + f" from epoch {ckpt.epochs_done + 1}")
    return Resumed(ckpt.epochs_done, list(ckpt.history), ckpt.wall_seconds, changes, list(ckpt.sessions))


def checkpoint_recipe(ckpt: Checkpoint, out: Path) -> Recipe:
    """The recipe the checkpoint was trained with: stored in it (since recipe changes are recorded),
    else the run's recipe.toml as it was before this resume rewrites it."""
    if isinstance(ckpt.recipe, str):
        return parse_recorded_recipe(tomllib.loads(ckpt.recipe), f"{RunDir(out).checkpoint} (its recipe)")
    return parse_recorded_recipe(read_toml(RunDir(out).recipe), str(RunDir(out).recipe))
