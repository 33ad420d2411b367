"""Cross-entropy alone (no distillation) and Hinton's KD: the loss of eq. 7 with β = 0."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.features import Features
from ..schema import param
from .logits import kd_loss, logit_defaults
from .registry import DistillMethod, MethodOutput, register_method

__all__ = ["CrossEntropy", "KD", "ce_kd_terms", "kd_loss"]


def ce_kd_terms(student: Features, teacher: Features | None, labels: torch.Tensor, alpha: float, temperature: float,
                kd_weight: float | None = None, standardize: bool = False) -> dict[str, torch.Tensor]:
    """α·CE + w·KD of eq. 7, w = 1 − α unless given; a term whose weight is 0 is left out, not computed."""
    weight = 1 - alpha if kd_weight is None else kd_weight
    terms = {}
    if alpha > 0:
        terms["ce"] = alpha * F.cross_entropy(student.logits.float(), labels)
    if weight > 0 and teacher is not None:
        terms["kd"] = weight * kd_loss(student.logits, teacher.logits, temperature, standardize)
    return terms


@register_method("none")
class CrossEntropy(DistillMethod):
    """Plain supervised training: teachers and the no-distillation baselines."""

    @dataclass(frozen=True)
    class Options:
        pass

    needs_teacher = False

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        return MethodOutput({"ce": F.cross_entropy(student.logits.float(), labels)})


@register_method("kd")
class KD(DistillMethod):
    """Hinton et al., weighted as the reference CIFAR code runs it: 0.1·CE + 0.9·KL at T = 4.

    RepDistiller's KD numbers — the ones the field quotes, and the paper's KD column — come from
    `-r 0.1 -a 0.9` (CE weight 0.1, KD weight 0.9). The paper's eq. 7 read literally puts α = 0.9 on
    CE instead; that weaker baseline stays available as `alpha = 0.9` ("paper-literal").
    `standardize = true` is KD + logit standardisation (logits.py), whose reference settings differ:
    T = 2 and KD weight 9 (CE weight still 0.1), filled in unless the recipe gives its own.
    """

    @dataclass(frozen=True)
    class Options:
        alpha: float = param(0.1, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha (0.1: "
                                                   "RepDistiller's 0.1·CE + 0.9·KL; 0.9: eq. 7 read literally)")
        temperature: float | None = param(None, gt=0, help="default 4 (2 with standardize)")
        kd_weight: float | None = param(None, ge=0, help="weight of the KD term; default 1 - alpha "
                                                         "(9 with standardize)")
        standardize: bool = param(False, help="logit standardisation (Sun et al. 2024) before the softmaxes")

        def __post_init__(self):
            d = logit_defaults("kd", self.standardize, self.alpha)
            if self.temperature is None:
                object.__setattr__(self, "temperature", d.temperature)
            if self.kd_weight is None:
                object.__setattr__(self, "kd_weight", d.weight)

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        return MethodOutput(ce_kd_terms(student, teacher, labels, o.alpha, o.temperature, o.kd_weight, o.standardize))
