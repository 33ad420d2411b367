"""MIMKD: CE (+ KD) plus three mutual-information terms between teacher and student (eqs. 1–7).

    L = α·CE + (1−α)·KD + λg·(−I_global) + λl·(−I_local) + λf·(−I_feature)

- global (eq. 3): MI between the pre-classifier vectors f_t(x), f_s(x). infoNCE bound (default)
  with K negatives from a memory, or the JSD bound with in-batch negatives.
- local (eq. 4): JSD bound between f_t(x), broadcast to every location, and each location of the
  student's deepest map in R; averaged over locations.
- feature (eq. 5): for each pair k of R, JSD bound between the teacher's and student's vectors at
  the same location; one critic per pair; averaged over locations, then pairs.

JSD negatives: the same location with another image's teacher features — one per positive by
default (the batch rolled by one), or every other image of the batch ("all", Deep InfoMax's way).

Global infoNCE, project critic (the paper's final CIFAR setting): both vectors are projected
(Table 8) to `embed_dim`, L2-normalised, and scored as ⟨p_t, p_s⟩ / τ. The positive pairs the two
current projections of the same image; the K negatives are memory rows of other samples: teacher
rows against the student's projection and student rows against the teacher's (both directions, as
CRD keeps two memories), each an infoNCE bound; the global bound is their mean. After scoring, the
batch's projections are written into the memory (momentum `nce_momentum`).
Global infoNCE, convolve critic: the memory keeps raw teacher vectors (one view, blended with the
same momentum, not normalised) and every (anchor, negative) pair goes through the critic: N·K
critic passes, far dearer than "project"; offered for the ablations, not recommended.

Estimates (`mi_*`) are the bound values themselves, detached: infoNCE in nats, at most log(K+1)
(≈ 8.32 for K = 4096); JSD ≤ 0, its best value 2·JSD(joint ‖ marginals) − log 4, so −1.386
means "no better than independent" and values towards 0 mean the critic tells pairs apart well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import param
from .bounds import infonce_lower_bound, jsd_lower_bound
from .critics import ConvolveCritic, ProjectDotCritic, make_critic
from .kd import ce_kd_terms
from .memory import make_memory
from .pairing import frozen, require_pairs, resolve_pairs
from .registry import DistillMethod, MethodContext, MethodOutput, register_method

TEACHER, STUDENT = 0, 1  # memory views


def _need_teacher_shapes(ctx: MethodContext, method: str) -> None:
    if not ctx.teacher_maps or ctx.teacher_dim <= 0:
        raise ValueError(f"{method}: the method context has no teacher shapes (teacher_maps, teacher_dim)")


@register_method("mimkd")
class MIMKD(DistillMethod):
    """Mutual Information Maximisation KD (Shrivastava et al., CVPR-W 2023), CIFAR defaults."""

    @dataclass(frozen=True)
    class Options:
        alpha: float = param(1.0, ge=0, le=1, help="weight of cross-entropy; KD gets 1 - alpha")
        temperature: float = param(4.0, gt=0, help="KD temperature")
        lambda_global: float = param(1.0, ge=0, help="weight of the global MI term (eq. 3)")
        lambda_local: float = param(0.75, ge=0, help="weight of the local MI term (eq. 4)")
        lambda_feature: float = param(1.0, ge=0, help="weight of the feature MI term (eq. 5)")
        global_bound: Literal["infonce", "jsd"] = param("infonce", help="bound of the global term")
        global_critic: Literal["project", "convolve"] = param("project")
        local_critic: Literal["convolve", "project"] = param("convolve")
        feature_critic: Literal["convolve", "project"] = param("convolve")
        negatives: Literal["derangement", "all"] = param(
            "derangement", help="JSD negatives: one per positive (batch rolled by 1) or every other image")
        nce_k: int = param(4096, ge=1, help="infoNCE negatives per anchor (the queue's size for memory='queue')")
        nce_t: float = param(0.07, gt=0, help="infoNCE temperature")
        nce_momentum: float = param(0.5, ge=0, lt=1, help="memory bank momentum")
        nce_shared: bool = param(False, help="one set of nce_k bank negatives per batch instead of per anchor")
        embed_dim: int = param(128, ge=1, help="output size of the project-and-dot projections")
        memory: Literal["bank", "queue"] = param("bank", help="bank: a row per sample (needs indices); queue: FIFO")
        pairs: tuple[tuple[int, int], ...] | None = param(
            None, help="R as (teacher map index, student map index) pairs; none: pair equal spatial sizes")
        critic_hidden: int = param(512, ge=1, help="hidden width of every critic")

    needs_index = True  # with the defaults (global infoNCE, memory bank); see __init__

    def __init__(self, opts: "MIMKD.Options", ctx: MethodContext):
        super().__init__(opts, ctx)
        _need_teacher_shapes(ctx, "mimkd")
        o = opts
        self.pairs = resolve_pairs(ctx.teacher_maps, ctx.student_maps, o.pairs)
        for weight, name in ((o.lambda_local, "lambda_local"), (o.lambda_feature, "lambda_feature")):
            if weight > 0:
                require_pairs(self.pairs, ctx.teacher_maps, ctx.student_maps, f"mimkd {name} = {weight:g} > 0")
        self.needs_index = o.lambda_global > 0 and o.global_bound == "infonce" and o.memory == "bank"
        # A DDP trainer may set this to a function that all-gathers a tensor across ranks: the
        # memory is then updated with every rank's embeddings and indices (identically everywhere).
        self.gather_fn: Callable[[torch.Tensor], torch.Tensor] | None = None

        self.global_critic = self.memory = None
        if o.lambda_global > 0:
            self.global_critic = make_critic(o.global_critic, ctx.teacher_dim, ctx.student_dim,
                                             o.critic_hidden, o.embed_dim)
            if o.global_bound == "infonce":
                if o.global_critic == "project":  # unit-norm projections of both networks
                    self.memory = make_memory(o.memory, ctx.num_samples, o.embed_dim, o.nce_k, views=2,
                                              momentum=o.nce_momentum, normalize=True)
                else:  # raw teacher vectors, scored by the critic against each student vector
                    self.memory = make_memory(o.memory, ctx.num_samples, ctx.teacher_dim, o.nce_k, views=1,
                                              momentum=o.nce_momentum, normalize=False)

        self.local_critic = None
        self.local_map = max(s for _, s in self.pairs) if self.pairs else -1
        if o.lambda_local > 0:
            c_s = ctx.student_maps[self.local_map][0]
            self.local_critic = make_critic(o.local_critic, ctx.teacher_dim, c_s, o.critic_hidden, o.embed_dim)

        self.feature_critics = nn.ModuleList()
        if o.lambda_feature > 0:
            for ti, si in self.pairs:
                self.feature_critics.append(make_critic(o.feature_critic, ctx.teacher_maps[ti][0],
                                                        ctx.student_maps[si][0], o.critic_hidden, o.embed_dim))

    # -- the three terms ---------------------------------------------------------------------------
    def forward(self, student, teacher, labels, index=None) -> MethodOutput:
        o = self.opts
        if teacher is None:
            raise ValueError("mimkd: needs the teacher's features")
        teacher = frozen(teacher)
        terms = ce_kd_terms(student, teacher, labels, o.alpha, o.temperature)
        estimates = {}
        t_vec = teacher.vector.detach()
        if o.lambda_global > 0:
            bound = self.global_bound(t_vec, student.vector, index)
            terms["global"] = -o.lambda_global * bound
            estimates["mi_global"] = bound.detach()
        if o.lambda_local > 0:
            bound = jsd_lower_bound(*self.local_critic.pair_scores(t_vec, student.maps[self.local_map], o.negatives))
            terms["local"] = -o.lambda_local * bound
            estimates["mi_local"] = bound.detach()
        if o.lambda_feature > 0:
            bounds = [jsd_lower_bound(*critic.pair_scores(teacher.maps[ti].detach(), student.maps[si], o.negatives))
                      for critic, (ti, si) in zip(self.feature_critics, self.pairs)]
            bound = torch.stack(bounds).mean()
            terms["feature"] = -o.lambda_feature * bound
            estimates["mi_feature"] = bound.detach()
        return MethodOutput(terms, estimates)

    def global_bound(self, t_vec: torch.Tensor, s_vec: torch.Tensor,
                     index: torch.Tensor | None = None) -> torch.Tensor:
        """The bound of eq. 3 for a batch (and, in training mode, the memory update)."""
        o = self.opts
        if o.global_bound == "jsd":
            return jsd_lower_bound(*self.global_critic.pair_scores(t_vec, s_vec, o.negatives))
        if self.needs_index and index is None:
            raise ValueError("mimkd: global infoNCE with memory 'bank' needs sample indices (index=None); "
                             "let the loader yield them or use memory = \"queue\"")
        critic, memory = self.global_critic, self.memory
        idx = memory.draw(index, o.nce_k, o.nce_shared) if self.needs_index else None
        if isinstance(critic, ProjectDotCritic):
            p_t = F.normalize(critic.proj_t(t_vec).float(), dim=-1)
            p_s = F.normalize(critic.proj_s(s_vec).float(), dim=-1)
            pos = (p_t * p_s).sum(-1) / o.nce_t
            neg_for_s = memory.dot(p_s, TEACHER, idx) / o.nce_t  # student anchors, teacher rows
            neg_for_t = memory.dot(p_t, STUDENT, idx) / o.nce_t  # teacher anchors, student rows
            bound = 0.5 * (infonce_lower_bound(pos, neg_for_s) + infonce_lower_bound(pos, neg_for_t))
            new_rows = torch.stack([p_t.detach(), p_s.detach()])
        else:
            assert isinstance(critic, ConvolveCritic)
            rows = memory.rows(TEACHER, idx)  # (N, K, C_t) per anchor, or (K, C_t) shared
            pos = critic(t_vec, s_vec)
            bound = infonce_lower_bound(pos, critic.score_rows(rows, s_vec))
            new_rows = t_vec.detach().float().unsqueeze(0)
        if self.training:
            self._update_memory(new_rows, index)
        return bound

    def _update_memory(self, rows: torch.Tensor, index: torch.Tensor | None) -> None:
        """Write the batch into the memory, after the scores were taken (rows: (views, N, dim))."""
        if self.gather_fn is not None:
            rows = torch.cat([self.gather_fn(r).unsqueeze(0) for r in rows])
            index = self.gather_fn(index) if index is not None else None
        self.memory.update(rows, index)
