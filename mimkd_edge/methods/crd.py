"""Contrastive representation distillation (Tian et al., ICLR 2020), as the paper's baseline.

Eq. 7 with α = 1, β = 0.8 (appendix A.2). Each network's pre-classifier vector is embedded by a
linear layer to 128 dimensions and L2-normalised. A memory bank keeps one row per training sample
for each network (momentum 0.5). For every anchor, the row of its own sample in the *other*
network's memory is the positive and K = 4096 rows of other samples are the negatives (uniform
among the samples j ≠ i; `shared` draws one set per batch instead). Scores: exp(⟨v, row⟩ / 0.07).

Loss (default "nce"): CRD's own NCE loss. Scores are turned into unnormalised densities
P = exp(⟨v, row⟩/τ) / Z, with the normalising constant Z = mean(P) · n_data estimated once, on the
first batch, and kept (buffer `log_z`, saved with checkpoints; under DDP estimated from every rank's
first batch, so all ranks keep one Z); with noise density P_n = 1/n_data and m = K,
loss = −[Σ_i log P_i,pos/(P_i,pos + m·P_n) + Σ_i,k log m·P_n/(P_i,k + m·P_n)] / N,
summed over both directions (student anchors against teacher rows and vice versa). Computed in
log space. "softmax" is the documented alternative: softmax cross-entropy of the positive among
the K+1 scores (infoNCE), per direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import param
from .kd import ce_kd_terms
from .memory import MemoryBank
from .registry import DistillMethod, MethodOutput, register_method

TEACHER, STUDENT = 0, 1  # memory views


@register_method("crd")
class CRD(DistillMethod):
    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float = param(4.0, gt=0)
        beta: float = param(0.8, ge=0, help="weight of the contrastive loss")
        feat_dim: int = param(128, ge=1, help="embedding size")
        nce_k: int = param(4096, ge=1, help="negatives per anchor")
        nce_t: float = param(0.07, gt=0, help="temperature")
        nce_momentum: float = param(0.5, ge=0, lt=1, help="memory bank momentum")
        shared: bool = param(False, help="one set of nce_k negatives per batch instead of one per anchor")
        loss: Literal["nce", "softmax"] = param("nce", help="CRD's NCE loss, or softmax cross-entropy")

    needs_index = True

    def __init__(self, opts, ctx):
        super().__init__(opts, ctx)
        if ctx.teacher_dim <= 0:
            raise ValueError("crd: the method context has no teacher vector size (teacher_dim)")
        self.embed_s = nn.Linear(ctx.student_dim, opts.feat_dim)
        self.embed_t = nn.Linear(ctx.teacher_dim, opts.feat_dim)
        self.memory = MemoryBank(ctx.num_samples, opts.feat_dim, views=2, momentum=opts.nce_momentum)
        self.register_buffer("log_z", torch.full((2,), math.nan))  # log Z per direction, set once
        self.gather_fn: Callable[[torch.Tensor], torch.Tensor] | None = None  # DDP: all-gather before update

    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        if index is None:
            raise ValueError("crd: needs sample indices (index=None): the memory bank has a row per sample")
        teacher = teacher.detach()
        terms = ce_kd_terms(student, teacher, labels, o.alpha, o.temperature)
        v_s = F.normalize(self.embed_s(student.vector).float(), dim=1)
        v_t = F.normalize(self.embed_t(teacher.vector.detach()).float(), dim=1)
        index = index.to(v_s.device).long().view(-1)
        if o.shared:
            neg = self.memory.draw(index, o.nce_k, shared=True)
            scores = []
            for v, view in ((v_s, TEACHER), (v_t, STUDENT)):
                pos = (self.memory.rows(view, index) * v).sum(1, keepdim=True)
                scores.append(torch.cat([pos, self.memory.dot(v, view, neg)], dim=1))
        else:
            idx = torch.cat([index[:, None], self.memory.draw(index, o.nce_k)], dim=1)  # positive first
            scores = [self.memory.dot(v_s, TEACHER, idx), self.memory.dot(v_t, STUDENT, idx)]
        loss = sum(self._loss(s / o.nce_t, d) for d, s in enumerate(scores))
        terms["crd"] = o.beta * loss
        if self.training:
            rows, idx_all = torch.stack([v_t.detach(), v_s.detach()]), index
            if self.gather_fn is not None:
                rows = torch.stack([self.gather_fn(r) for r in rows])
                idx_all = self.gather_fn(index)
            self.memory.update(rows, idx_all)
        return MethodOutput(terms)

    def _log_mean_exp(self, logits: torch.Tensor) -> torch.Tensor:
        """log mean(exp(logits)) over every score of the batch; under DDP (`gather_fn` set) over every
        rank's scores, so all ranks estimate one Z from the whole first batch and keep the same constant."""
        lse = torch.logsumexp(logits.flatten(), 0)
        if self.gather_fn is None:
            return lse - math.log(logits.numel())
        count = self.gather_fn(torch.tensor([logits.numel()], device=logits.device))
        return torch.logsumexp(self.gather_fn(lse.view(1)), 0) - math.log(int(count.sum()))

    def _loss(self, logits: torch.Tensor, direction: int) -> torch.Tensor:
        """Loss of one direction from (N, K+1) logits, the positive in column 0."""
        if self.opts.loss == "softmax":
            return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))
        n_data = self.memory.num_samples
        if torch.isnan(self.log_z[direction]):  # Z = mean(exp(logits)) · n_data, from the first batch
            self.log_z[direction] = self._log_mean_exp(logits.detach()) + math.log(n_data)
        log_p = logits - self.log_z[direction]
        k = logits.shape[1] - 1
        log_mpn = math.log(k / n_data)  # log(m · P_n)
        log_d1 = log_p[:, 0] - torch.logaddexp(log_p[:, 0], torch.full_like(log_p[:, 0], log_mpn))
        log_d0 = log_mpn - torch.logaddexp(log_p[:, 1:], torch.full_like(log_p[:, 1:], log_mpn))
        return -(log_d1.sum() + log_d0.sum()) / logits.shape[0]
