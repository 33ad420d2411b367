"""The learning-rate schedules a recipe names, built and re-applied at resume in one place.

"step" is the paper's (lr × gamma at each milestone epoch; the scheduler steps once per epoch).
"cosine" anneals to exactly 0 at the last step, after an optional linear warm-up, and steps once per
optimiser step: a short CPU schedule ends converged (the last epochs at lr ≈ 0 barely move the
weights) instead of stopping mid-descent as a truncated step schedule does.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from functools import partial

import torch

from ..recipe import TrainConfig


def cosine_factor(step: int, total: int, warmup: int) -> float:
    """lr / base lr at optimiser step `step` (0-based) of `total`: linear from 1/warmup to 1 over the
    first `warmup` steps, then half a cosine from 1 down to 0 at step `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, total - warmup) / max(total - warmup, 1)))


def _cosine(t: TrainConfig, steps_per_epoch: int):
    return partial(cosine_factor, total=t.epochs * steps_per_epoch, warmup=t.warmup_epochs * steps_per_epoch)


def make_scheduler(optimizer: torch.optim.Optimizer, t: TrainConfig, steps_per_epoch: int):
    if t.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(t, steps_per_epoch))
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(t.milestones), gamma=t.gamma)


def apply_schedule(optimizer: torch.optim.Optimizer, scheduler, t: TrainConfig, steps_per_epoch: int) -> None:
    """Set an optimiser and scheduler restored from a checkpoint to `t`'s schedule at the point the
    scheduler has reached: the step schedule's lr is the new lr decayed by the new gamma once per new
    milestone passed; the cosine one's is the new lr times the new curve (new epochs) at this step."""
    if t.schedule == "cosine":
        scheduler.lr_lambdas = [_cosine(t, steps_per_epoch) for _ in optimizer.param_groups]
        lr = t.lr * scheduler.lr_lambdas[0](scheduler.last_epoch)
    else:
        scheduler.milestones = Counter(t.milestones)
        scheduler.gamma = t.gamma
        lr = t.lr * t.gamma ** bisect_right(sorted(t.milestones), scheduler.last_epoch)
    scheduler.base_lrs = [t.lr for _ in optimizer.param_groups]
    for group in optimizer.param_groups:
        group.update(initial_lr=t.lr, lr=lr, momentum=t.momentum, weight_decay=t.weight_decay)
    scheduler._last_lr = [lr for _ in optimizer.param_groups]
