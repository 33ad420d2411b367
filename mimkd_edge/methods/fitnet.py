"""FitNets (Romero et al.): a regressor maps a student map onto the teacher's, MSE "hint" loss.

Eq. 7 with α = 1 and β = 100 (appendix A.2). The hint is one pair of equal-size maps: the middle
pair of the set R (same rule as MIMKD's pairing), unless `hint` names the pair. For the CIFAR
ResNets that is the output of the second stage (e.g. 128@16 for ResNet-32x4 → ResNet-8x4), the
layer the reference CIFAR code hints by default (`feat[2]`). The regressor is the reference's:
a convolution from student to teacher channels (1×1 for maps of equal size, with a bias), then
BatchNorm, then ReLU (the hinted maps of the CIFAR ResNets are post-ReLU). `kernel = 3` and
`relu = false` give the variant this project used before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import nn

from ..schema import param
from .kd import ce_kd_terms
from .pairing import require_pairs, resolve_pairs
from .registry import DistillMethod, MethodOutput, register_method


@register_method("fitnet")
class FitNet(DistillMethod):
    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float = param(4.0, gt=0)
        beta: float = param(100.0, ge=0, help="weight of the hint loss")
        hint: tuple[int, int] | None = param(None, help="(teacher map index, student map index); none: middle of R")
        kernel: Literal[1, 3] = param(1, help="regressor kernel size")
        relu: bool = param(True, help="ReLU after the regressor's BatchNorm, as the reference code")

    def __init__(self, opts, ctx):
        super().__init__(opts, ctx)
        if not ctx.teacher_maps:
            raise ValueError("fitnet: the method context has no teacher map shapes")
        if opts.hint is not None:
            (self.hint,) = resolve_pairs(ctx.teacher_maps, ctx.student_maps, [opts.hint])
        else:
            pairs = resolve_pairs(ctx.teacher_maps, ctx.student_maps)
            require_pairs(pairs, ctx.teacher_maps, ctx.student_maps, "fitnet's hint")
            self.hint = pairs[len(pairs) // 2]
        ti, si = self.hint
        c_t, c_s = ctx.teacher_maps[ti][0], ctx.student_maps[si][0]
        k = opts.kernel
        layers = [nn.Conv2d(c_s, c_t, k, padding=k // 2), nn.BatchNorm2d(c_t)]
        self.regressor = nn.Sequential(*layers, *([nn.ReLU()] if opts.relu else []))

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        teacher = teacher.detach()
        terms = ce_kd_terms(student, teacher, labels, o.alpha, o.temperature)
        ti, si = self.hint
        pred = self.regressor(student.maps[si])
        terms["fitnet"] = o.beta * F.mse_loss(pred.float(), teacher.maps[ti].detach().float())
        return MethodOutput(terms)

