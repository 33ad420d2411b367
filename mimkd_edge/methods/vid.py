"""Variational information distillation (Ahn et al., CVPR 2019).

For each pair (t, s) of maps, a regressor μ(s) (1×1 conv → ReLU → 1×1 conv → ReLU → 1×1 conv, to
the teacher's channels) and a learned variance per teacher channel σ²_c = softplus(ρ_c) + ε define
a Gaussian q(t | s); the loss is its negative log-likelihood without the constant:
mean over (N, C, H, W) of ½·((t − μ)² / σ²_c + log σ²_c), summed over pairs. Variances start at
5.0 as in the reference code. Eq. 7 with α = 1, β = 1; pairs: the set R without either network's
shallowest map (RepDistiller's `feat[1:-1]`) unless listed. The targets are the teacher's raw
maps, as the reference has them: a teacher with very large activations (a short-trained one)
makes this loss, and its gradients, grow with their square — MIMKD standardises what its critics
see (standardize.py), VID is left as the field runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import param
from .kd import ce_kd_terms
from .pairing import inner_pairs, require_pairs, resolve_pairs
from .registry import DistillMethod, MethodOutput, register_method


class VIDRegressor(nn.Module):
    """μ(s) and per-channel σ² for one pair of maps."""

    def __init__(self, c_s: int, c_t: int, hidden: int | None = None, init_var: float = 5.0, eps: float = 1e-5):
        super().__init__()
        h = hidden or c_t
        self.mean = nn.Sequential(nn.Conv2d(c_s, h, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(h, h, 1, bias=False), nn.ReLU(), nn.Conv2d(h, c_t, 1, bias=False))
        self.eps = eps
        # softplus(ρ) + ε = init_var
        self.log_scale = nn.Parameter(torch.full((c_t,), math.log(math.expm1(init_var - eps))))

    def variance(self) -> torch.Tensor:
        return F.softplus(self.log_scale) + self.eps

    def nll(self, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        mu = self.mean(s).float()
        var = self.variance().float().view(1, -1, 1, 1)
        return 0.5 * ((mu - t.float()).pow(2) / var + var.log()).mean()


@register_method("vid")
class VID(DistillMethod):
    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float = param(4.0, gt=0)
        beta: float = param(1.0, ge=0, help="weight of the VID loss")
        init_var: float = param(5.0, gt=0, help="initial variance of every teacher channel")
        pairs: tuple[tuple[int, int], ...] | None = param(None, help="(teacher, student) map indices; none: R")
        skip_first_map: bool = param(True, help="R without either network's shallowest (stem) map, as the "
                                                "reference CIFAR code distils it (feat[1:-1]); false: all of R")

    def __init__(self, opts, ctx):
        super().__init__(opts, ctx)
        if not ctx.teacher_maps:
            raise ValueError("vid: the method context has no teacher map shapes")
        pick = inner_pairs if opts.skip_first_map else resolve_pairs
        self.pairs = pick(ctx.teacher_maps, ctx.student_maps, opts.pairs)
        require_pairs(self.pairs, ctx.teacher_maps, ctx.student_maps, "vid")
        self.regressors = nn.ModuleList(
            VIDRegressor(ctx.student_maps[si][0], ctx.teacher_maps[ti][0], init_var=opts.init_var)
            for ti, si in self.pairs)

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        teacher = teacher.detach()
        terms = ce_kd_terms(student, teacher, labels, o.alpha, o.temperature)
        terms["vid"] = o.beta * sum(reg.nll(student.maps[si], teacher.maps[ti].detach())
                                    for reg, (ti, si) in zip(self.regressors, self.pairs, strict=True))
        return MethodOutput(terms)
