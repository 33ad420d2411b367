"""Decoupled KD (Zhao et al., CVPR 2022), with the reference CIFAR code's defaults.

L = CE + ramp · (α·TCKD + β·NCKD)·T² (logits.py): CE weight 1, α = 1, β = 8, T = 4, and the DKD
term ramped in linearly over the first 20 of the reference's 240 epochs — here over the same
fraction (1/12) of the recipe's schedule, counted in steps (`warmup`). `standardize = true` is
DKD + logit standardisation with the LS release's settings (α = 9, β = 81, T = 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..schema import param
from .logits import DKD_WARMUP, WarmupRamp, dkd_terms, logit_defaults
from .registry import DistillMethod, MethodContext, MethodOutput, register_method


@register_method("dkd")
class DKD(DistillMethod):
    @dataclass(frozen=True)
    class Options:
        ce_weight: float = param(1.0, ge=0)
        alpha: float | None = param(None, ge=0, help="weight of TCKD; default 1 (9 with standardize)")
        beta: float | None = param(None, ge=0, help="weight of NCKD; default 8 (81 with standardize)")
        temperature: float | None = param(None, gt=0, help="default 4")
        warmup: float = param(DKD_WARMUP, ge=0, le=1, help="fraction of the schedule over which the DKD term "
                                                           "ramps in (the reference: 20 of 240 epochs)")
        standardize: bool = param(False, help="logit standardisation (Sun et al. 2024) before the softmaxes")

        def __post_init__(self):
            d = logit_defaults("dkd", self.standardize)
            for key, value in (("alpha", d.weight), ("beta", d.beta), ("temperature", d.temperature)):
                if getattr(self, key) is None:
                    object.__setattr__(self, key, value)

    def __init__(self, opts: DKD.Options, ctx: MethodContext):
        super().__init__(opts, ctx)
        self.ramp = WarmupRamp(opts.warmup, ctx.total_steps)

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        terms = {}
        if o.ce_weight > 0:
            terms["ce"] = o.ce_weight * F.cross_entropy(student.logits.float(), labels)
        terms.update(weighted_dkd_terms(student.logits, teacher.logits, labels, o.alpha, o.beta, o.temperature,
                                        o.standardize, self.ramp()))
        return MethodOutput(terms)


def weighted_dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
                       beta: float, temperature: float, standardize: bool, ramp: torch.Tensor | float
                       ) -> dict[str, torch.Tensor]:
    """{"tckd": ramp·α·TCKD, "nckd": ramp·β·NCKD}: DKD's loss as two logged terms."""
    tckd, nckd = dkd_terms(student_logits, teacher_logits, labels, temperature, standardize)
    return {"tckd": ramp * alpha * tckd, "nckd": ramp * beta * nckd}
