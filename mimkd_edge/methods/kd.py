"""Cross-entropy alone (no distillation) and Hinton's KD: the loss of eq. 7 with β = 0."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.features import Features
from ..schema import param
from .registry import DistillMethod, MethodOutput, register_method


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD: KL(teacher ‖ student) at temperature T, scaled by T² so gradients keep their size."""
    log_p_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * temperature**2


def ce_kd_terms(student: Features, teacher: Features | None, labels: torch.Tensor,
                alpha: float, temperature: float) -> dict[str, torch.Tensor]:
    """α·CE + (1−α)·KD of eq. 7; a term whose weight is 0 is left out, not computed."""
    terms = {}
    if alpha > 0:
        terms["ce"] = alpha * F.cross_entropy(student.logits.float(), labels)
    if alpha < 1 and teacher is not None:
        terms["kd"] = (1 - alpha) * kd_loss(student.logits, teacher.logits, temperature)
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
    """

    @dataclass(frozen=True)
    class Options:
        alpha: float = param(0.1, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha (0.1: "
                                                   "RepDistiller's 0.1·CE + 0.9·KL; 0.9: eq. 7 read literally)")
        temperature: float = param(4.0, gt=0)

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        return MethodOutput(ce_kd_terms(student, teacher, labels, self.opts.alpha, self.opts.temperature))
