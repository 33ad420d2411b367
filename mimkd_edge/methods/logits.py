"""Logit losses shared by every method that has one: KD, DKD, and logit standardisation (LS).

- KD (Hinton et al.): KL(p_t ‖ p_s) of the softmaxes at temperature T, times T² so gradients keep
  their size as T changes.
- DKD (Zhao et al., CVPR 2022) splits that KL in two. TCKD: the KL between the binary distributions
  (target class, all others summed); NCKD: the KL between the distributions over the non-target
  classes alone (target removed, renormalised). L = (α·TCKD + β·NCKD)·T². KD is the special case
  α = 1, β = 1 − p_t(target) (the NCKD weight KD hides, small exactly when the teacher is confident,
  which is why DKD frees β).
- LS (Sun et al., CVPR 2024): before the softmax, each sample's logits are z-scored over the classes,
  (z − mean z) / (std z + 1e-7), std the unbiased one. The student then has to match the teacher's
  logit *relations*, not their range: a small student cannot reach a big teacher's logit scale, and
  with one shared temperature plain KD asks it to.

Defaults are the reference code's, per method and with or without LS (`logit_defaults`): KD T = 4
and weight 1 − α (0.9 beside a CE weight of 0.1); KD + LS T = 2, weight 9; DKD α = 1, β = 8, T = 4;
DKD + LS α = 9, β = 81, T = 4 — what the LS release's `--logit-stand --kd-weight 9` sets for DKD (it
scales α by the weight and then sets β to the scaled α times the weight; its base temperature goes to
KD's temperature, which DKD does not read). DKD ramps in linearly over the first 20 of its 240 epochs;
`WarmupRamp` does the same over the same fraction of whatever schedule a recipe runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LS_EPS = 1e-7
DKD_WARMUP = 20 / 240  # the reference's ramp: 20 epochs of a 240-epoch schedule


def standardize_logits(z: torch.Tensor) -> torch.Tensor:
    """Z-score each row over the classes (unbiased std), as logit standardisation does."""
    return (z - z.mean(dim=1, keepdim=True)) / (z.std(dim=1, keepdim=True) + LS_EPS)


def _scaled(z: torch.Tensor, temperature: float, standardize: bool) -> torch.Tensor:
    z = z.float()
    return (standardize_logits(z) if standardize else z) / temperature


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
            standardize: bool = False) -> torch.Tensor:
    """KL(teacher ‖ student) at temperature T, times T², batch mean; `standardize`: LS first."""
    log_p_s = F.log_softmax(_scaled(student_logits, temperature, standardize), dim=1)
    log_p_t = F.log_softmax(_scaled(teacher_logits, temperature, standardize), dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float,
              standardize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each a batch mean times T². Log space throughout: log(1 − p_target) is the
    log-sum-exp of the other classes, so a confident teacher (p_target → 1) costs no precision."""
    target = F.one_hot(labels, student_logits.shape[1]).bool()

    def binary_and_rest(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_all = torch.logsumexp(z, dim=1)
        rest = z.masked_fill(target, float("-inf"))
        log_rest = torch.logsumexp(rest, dim=1)
        log_binary = torch.stack([z[target] - log_all, log_rest - log_all], dim=1)  # log [p_target, 1 − p_target]
        log_others = rest - log_rest[:, None]  # log p̂ over the non-target classes; −inf at the target
        return log_binary, log_others

    bs, os_ = binary_and_rest(_scaled(student_logits, temperature, standardize))
    bt, ot = binary_and_rest(_scaled(teacher_logits, temperature, standardize))
    tckd = (bt.exp() * (bt - bs)).sum(1).mean()
    nckd = torch.where(target, 0.0, ot.exp() * (ot - os_)).sum(1).mean()
    return tckd * temperature**2, nckd * temperature**2


@dataclass(frozen=True)
class LogitDefaults:
    temperature: float
    weight: float  # KD's weight, or DKD's α (TCKD)
    beta: float = 0.0  # DKD's β (NCKD)


def logit_defaults(kind: str, standardize: bool, alpha: float = 0.1) -> LogitDefaults:
    """The reference code's settings of a logit term: `kind` "kd" or "dkd", with or without LS;
    `alpha` is the CE weight, which sets plain KD's weight (1 − α)."""
    if kind == "kd":
        return LogitDefaults(2.0, 9.0) if standardize else LogitDefaults(4.0, 1.0 - alpha)
    if kind == "dkd":
        return LogitDefaults(4.0, 9.0, 81.0) if standardize else LogitDefaults(4.0, 1.0, 8.0)
    raise ValueError(f"unknown logit term {kind!r}")


class WarmupRamp(nn.Module):
    """A loss weight rising linearly from 1/n to 1 over the first `fraction` of the schedule's steps,
    then 1. It counts the training steps it has seen (a buffer, so a resumed run continues the ramp);
    with no schedule length known (`total_steps` 0) or `fraction` 0 it is 1 throughout."""

    def __init__(self, fraction: float, total_steps: int):
        super().__init__()
        self.ramp_steps = round(fraction * total_steps)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self) -> torch.Tensor | float:
        if self.training:
            self.steps.add_(1)
        if self.ramp_steps <= 0:
            return 1.0
        return (self.steps.float() / self.ramp_steps).clamp(max=1.0)
