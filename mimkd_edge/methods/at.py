"""Attention transfer (Zagoruyko & Komodakis), activation-based, p = 2.

Each map becomes a spatial attention vector a = normalise(mean_c |F_c|^p) (flattened, L2
normalised), and the loss is Σ_pairs mean((a_s − a_t)²) — the form of the reference CIFAR KD code,
with which β = 1000 (appendix A.2) was tuned. Eq. 7 with α = 1. The pairs are the set R (equal
spatial sizes, MIMKD's rule) without either network's shallowest map — RepDistiller's `feat[1:-1]`,
the maps β was tuned on — unless listed; channel counts may differ since attention sums them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..schema import param
from .kd import ce_kd_terms
from .pairing import inner_pairs, require_pairs, resolve_pairs
from .registry import DistillMethod, MethodOutput, register_method


def attention_map(x: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """(N, C, H, W) → (N, H·W): mean over channels of |x|^p, each row L2-normalised (float32)."""
    return F.normalize(x.float().abs().pow(p).mean(1).flatten(1), dim=1)


def at_loss(student_map: torch.Tensor, teacher_map: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    return (attention_map(student_map, p) - attention_map(teacher_map, p)).pow(2).mean()


@register_method("at")
class AttentionTransfer(DistillMethod):
    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float = param(4.0, gt=0)
        beta: float = param(1000.0, ge=0, help="weight of the attention loss")
        p: float = param(2.0, gt=0, help="exponent of the attention map")
        pairs: tuple[tuple[int, int], ...] | None = param(None, help="(teacher, student) map indices; none: R")
        skip_first_map: bool = param(True, help="R without either network's shallowest (stem) map, as the "
                                                "reference CIFAR code distils it (feat[1:-1]); false: all of R")

    def __init__(self, opts, ctx):
        super().__init__(opts, ctx)
        if not ctx.teacher_maps:
            raise ValueError("at: the method context has no teacher map shapes")
        pick = inner_pairs if opts.skip_first_map else resolve_pairs
        self.pairs = pick(ctx.teacher_maps, ctx.student_maps, opts.pairs)
        require_pairs(self.pairs, ctx.teacher_maps, ctx.student_maps, "attention transfer")

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        teacher = teacher.detach()
        terms = ce_kd_terms(student, teacher, labels, o.alpha, o.temperature)
        terms["at"] = o.beta * sum(at_loss(student.maps[si], teacher.maps[ti].detach(), o.p) for ti, si in self.pairs)
        return MethodOutput(terms)
