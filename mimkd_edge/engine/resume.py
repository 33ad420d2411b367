"""What `--resume` may change, and how a change is applied and recorded.

A run is resumed from its checkpoint with the recipe given now. Keys that only steer the rest of
the schedule may differ from the checkpoint's recipe — the remedy for a run that diverged is to
resume it with a lower `train.lr` — and such a change is *applied* (the optimiser's learning rate,
momentum and weight decay, the scheduler's milestones and gamma are set from the new recipe at the
epoch resumed) and *recorded* (the run summary's `recipe_changes`, the epoch it took effect, old and new
value; recipe.toml then holds the new recipe). Any other difference — model, method, data, seed,
batch size, precision — would make the checkpoint's state mean something else, so it is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..recipe import Recipe

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
