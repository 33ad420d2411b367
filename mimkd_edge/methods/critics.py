"""The two MI critics of appendix A.4: convolve (concatenate, then score) and project-and-dot.

A critic T(t, s) scores a (teacher, student) pair; the bounds of `bounds.py` turn the scores of
positive pairs (same image) and negative pairs (teacher of another image) into an MI estimate.
Inputs are either vectors (N, C) or maps (N, C, H, W); teacher and student channel counts may
differ. A teacher vector against a student map is broadcast over every location (the local term).
Scores come back shaped (N,) for vector pairs and (N, H, W) for map pairs.

Both critics work channel-last: a 1×1 convolution is a linear layer applied at every location,
so `nn.Linear` on (N, H, W, C) is exactly the paper's 1×1 conv (same parameters, same function),
and a channels_last map turns into (N, H, W, C) without a copy.

Cost: negatives are scored without recomputing what does not change.
- convolve: the first layer acts on the concatenation [t, s], so W·[t; s] + b = W_t·t + W_s·s + b.
  Each half is computed once and a negative is W_t·t(x') + W_s·s(x): the concatenated tensor is
  never built, a broadcast teacher vector costs one (N, C) product instead of one per location,
  and only the second and third layers run again for the negatives (they must: they see the
  negative pair). Positives and negatives go through those layers as one batch. For a teacher
  map narrower than the hidden width, the teacher *input* is permuted (C_t wide) rather than its
  hidden-wide activation; and no ReLU works in place on a view (autograd would copy it back).
  Measured: ~20% off the feature term's step time against a plain cat-then-permute version.
- project-and-dot: each side is projected once; negatives are dot products with the teacher
  projections of other images (a permutation, or a full matrix for "all").
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .bounds import derangement

Negatives = Literal["derangement", "all"]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, H, W, C) (a view); vectors (N, C) pass through."""
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1)
    if x.dim() == 2:
        return x
    raise ValueError(f"critic inputs must be (N, C) vectors or (N, C, H, W) maps, got shape {tuple(x.shape)}")


def _check_pair(t: torch.Tensor, s: torch.Tensor) -> None:
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"critic: teacher batch {t.shape[0]} != student batch {s.shape[0]}")
    if t.dim() == 4 and s.dim() == 4 and t.shape[2:] != s.shape[2:]:
        raise ValueError(f"critic: teacher map {tuple(t.shape[1:])} and student map {tuple(s.shape[1:])} "
                         "differ in spatial size")
    if t.dim() == 4 and s.dim() == 2:
        raise ValueError("critic: a teacher map against a student vector is not supported")


def _broadcast_teacher(a_t: torch.Tensor, a_s: torch.Tensor) -> torch.Tensor:
    """A teacher vector's activation (N, D) lined up against a student map's (N, H, W, D), or
    against the student's sampled locations (N, L, D)."""
    if a_t.dim() == 2 and a_s.dim() > 2:
        return a_t.view(a_t.shape[0], *([1] * (a_s.dim() - 2)), a_t.shape[-1])
    return a_t


def sample_locations(n: int, h: int, w: int, count: int, device: torch.device | str | None = None,
                     stratified: bool = False) -> torch.Tensor | None:
    """(N, L) flat indices of L = `count` distinct locations of an H×W map, drawn per image from the
    global generator (seeded by the trainer); None when `count` is 0 or covers the map.

    Why: the local and feature terms are means over H×W locations (eqs. 4, 5). The mean over a
    subset in which every location has the same chance L/(H·W) of being scored is an unbiased
    estimate of that mean and, the subset being drawn independently of the parameters, its gradient
    an unbiased estimate of the gradient — at L/(H·W) of the critic's cost. Each image gets its own
    subset. Uniform: L distinct locations anywhere. `stratified`: the map cut into L equal tiles
    (`location_strata`), one location drawn uniformly in each — still probability L/(H·W) for every
    location, but neighbouring locations, which look alike, are never drawn together and no region is
    left out, so the estimate and its gradient vary less from draw to draw. A map that cannot be cut
    into L equal tiles falls back to the uniform draw.
    """
    if count <= 0 or count >= h * w:
        return None
    strata = location_strata(h, w, count) if stratified else None
    if strata is None:
        return torch.rand(n, h * w, device=device).argsort(dim=1)[:, :count]
    th, tw = strata
    pick = torch.randint(0, th * tw, (n, count), device=device)  # the location inside each tile
    tile = torch.arange(count, device=device)
    tiles_per_row = w // tw
    row = (tile // tiles_per_row) * th + pick // tw
    col = (tile % tiles_per_row) * tw + pick % tw
    return row * w + col


@functools.lru_cache(maxsize=64)  # asked every step for the same few map sizes
def location_strata(h: int, w: int, count: int) -> tuple[int, int] | None:
    """(tile height, tile width) cutting an H×W map into `count` equal tiles, as square as can be;
    None when no such cut exists (H·W not a multiple of `count`, or no tile shape divides both sides)."""
    if count <= 0 or (h * w) % count:
        return None
    m = h * w // count  # locations per tile
    cuts = [(th, m // th) for th in range(1, m + 1) if m % th == 0 and h % th == 0 and w % (m // th) == 0]
    return min(cuts, key=lambda c: (abs(c[0] - c[1]), c[0])) if cuts else None


def take_locations(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The entries of a map (N, C, H, W) at flat locations `idx` (N, L), channel-last: (N, L, C)."""
    x = channels_last(x)  # (N, H, W, C); a view, contiguous for a channels_last map
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    return flat.gather(1, idx.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))


def _derangement_inputs(t: torch.Tensor, s: torch.Tensor, perm: torch.Tensor, idx: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Channel-last (teacher of the positives, teacher of the negatives, student) at sampled
    locations. A negative pairs s_i at location l with t_{perm(i)} at the *same* location l; a
    teacher vector has no locations and is only permuted."""
    s_at = take_locations(s, idx)
    if t.dim() == 2:
        return t, t[perm], s_at
    return take_locations(t, idx), take_locations(t[perm], idx), s_at


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """Entries (n, m) with n ≠ m of a tensor shaped (N, N, ...), flattened to (N·(N−1), ...)."""
    n = m.shape[0]
    keep = ~torch.eye(n, dtype=torch.bool, device=m.device)
    return m[keep]


class ConvolveCritic(nn.Module):
    """Tables 6 and 7: [teacher, student] → (1×1 conv | linear) hidden + ReLU → hidden + ReLU → 1.

    `first` is the single layer over the concatenation [t, s] (teacher channels first), so the
    parameters are those of the paper's critic; `forward` applies it split in two (see module doc).
    """

    def __init__(self, teacher_dim: int, student_dim: int, hidden: int = 512):
        super().__init__()
        self.teacher_dim, self.student_dim = teacher_dim, student_dim
        self.first = nn.Linear(teacher_dim + student_dim, hidden)
        self.second = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    # -- the pieces ------------------------------------------------------------------------------
    def teacher_part(self, t: torch.Tensor) -> torch.Tensor:
        """W_t·t + b, channel-last; `t` is (..., C_t) already channel-last or a map/vector."""
        return F.linear(t, self.first.weight[:, :self.teacher_dim], self.first.bias)

    def student_part(self, s: torch.Tensor) -> torch.Tensor:
        return F.linear(s, self.first.weight[:, self.teacher_dim:])

    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """The layers after the first, on its pre-activation (..., hidden) → scores (...).

        `pre` must be a fresh tensor, not a view (a sum made for this call): the first ReLU works in
        place on it, which saves one hidden-sized buffer. (The second layer's output comes out of
        `F.linear` as a view, and an in-place op on a view costs autograd a copy: not in place.)
        """
        return self.out(F.relu(self.second(F.relu_(pre)))).squeeze(-1)

    def _parts(self, t: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(t, s)
        a_s = self.student_part(channels_last(s))
        a_t = _broadcast_teacher(self.teacher_part(channels_last(t)), a_s)
        return a_t, a_s

    # -- scoring -----------------------------------------------------------------------------------
    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Scores of the pairs (t_i, s_i): (N,) or (N, H, W)."""
        a_t, a_s = self._parts(t, s)
        return self.head(a_t + a_s)

    def pair_scores(self, t: torch.Tensor, s: torch.Tensor, negatives: Negatives = "derangement",
                    locations: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive scores, negative scores) for a batch.

        "derangement": one negative per positive, (t_{i−1}, s_i); the two score tensors have the
        same shape. "all": every (t_j, s_i) with j ≠ i, shaped (N−1, N, ...) — one head pass per
        shift of the batch, so N−1 times the cost of the derangement. `locations` (N, L), from
        `sample_locations`: score maps only there (derangement only); scores shaped (N, L).
        """
        if locations is not None:
            return self._sampled_pair_scores(t, s, negatives, locations)
        if negatives == "derangement":
            _check_pair(t, s)
            n = s.shape[0]
            perm = derangement(n, s.device)
            a_s = self.student_part(channels_last(s))
            t = channels_last(t)
            if t.dim() == 4 and t.shape[-1] < self.first.out_features:
                # narrow teacher map: permute the input, not the hidden-wide activation, and get the
                # teacher part of positives and negatives from one product
                a_t = self.teacher_part(torch.cat([t, t[perm]])).unflatten(0, (2, n))
            else:
                a_t = _broadcast_teacher(self.teacher_part(t), a_s)
                a_t = torch.stack([a_t, a_t[perm]])
            # positives and negatives through the head as one batch, shaped (2, N, ...)
            both = self.head(a_t + a_s)
            return both[0], both[1]
        a_t, a_s = self._parts(t, s)
        n = a_s.shape[0]
        if negatives == "all":
            if n < 2:
                raise ValueError(f"negative pairs need a batch of at least 2 images, got {n}")
            pos = self.head(a_s + a_t)
            neg = torch.stack([self.head(a_s + torch.roll(a_t, r, dims=0)) for r in range(1, n)])
            return pos, neg
        raise ValueError(f"unknown negatives {negatives!r}; expected 'derangement' or 'all'")

    def _sampled_pair_scores(self, t, s, negatives, idx):
        _check_pair(t, s)
        _require_derangement(negatives)
        perm = derangement(s.shape[0], s.device)
        t_pos, t_neg, s_at = _derangement_inputs(t, s, perm, idx)
        a_s = self.student_part(s_at)  # (N, L, D)
        a_t = self.teacher_part(torch.stack([t_pos, t_neg]))  # (2, N, L, D); (2, N, D) for a vector
        if t.dim() == 2:
            a_t = a_t.unsqueeze(2)
        both = self.head(a_t + a_s)
        return both[0], both[1]

    def score_rows(self, t_rows: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Scores of every student vector s_i (N, C_s) against teacher rows: (K, C_t) shared by all
        anchors, or (N, K, C_t) per anchor → (N, K). One head pass per (anchor, row) pair."""
        if s.dim() != 2:
            raise ValueError("score_rows: student vectors (N, C) expected")
        a_s = self.student_part(s)  # (N, D)
        a_t = self.teacher_part(t_rows.to(a_s.dtype))  # (K, D) or (N, K, D)
        if a_t.dim() == 2:
            a_t = a_t.unsqueeze(0)
        return self.head(a_s.unsqueeze(1) + a_t)


class Projection(nn.Module):
    """Tables 8 and 9: LayerNorm(Linear-ReLU-Linear(v) + ReLU(Linear(v))) over the last dimension.

    On channel-last maps the linear layers are the 1×1 convolutions of Table 9 and the LayerNorm
    normalises each location's channel vector.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        self.shortcut = nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(inplace=True))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """A vector (N, C), a map (N, C, H, W), or sampled locations (N, L, C), already channel-last."""
        v = v if v.dim() == 3 else channels_last(v)
        return self.norm(self.block(v) + self.shortcut(v))


class ProjectDotCritic(nn.Module):
    """Project-and-dot: T(t, s) = ⟨P_t(t), P_s(s)⟩ / √d, per location for maps.

    The 1/√d is a fixed rescaling of the dot product (equivalently of LayerNorm's learnable gains),
    so that scores start O(1) instead of O(√d); it does not change what the critic can express.
    The infoNCE path (`mimkd.py`) uses the projections directly, L2-normalised, over a temperature.
    """

    def __init__(self, teacher_dim: int, student_dim: int, hidden: int = 512, out_dim: int = 128):
        super().__init__()
        self.proj_t = Projection(teacher_dim, hidden, out_dim)
        self.proj_s = Projection(student_dim, hidden, out_dim)
        self.scale = 1.0 / math.sqrt(out_dim)

    def project(self, t: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_pair(t, s)
        return self.proj_t(t), self.proj_s(s)

    def dot(self, p_t: torch.Tensor, p_s: torch.Tensor) -> torch.Tensor:
        return (_broadcast_teacher(p_t, p_s) * p_s).sum(-1) * self.scale

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.dot(*self.project(t, s))

    def pair_scores(self, t: torch.Tensor, s: torch.Tensor, negatives: Negatives = "derangement",
                    locations: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) scores; projections computed once. "all" gives (N·(N−1), ...).
        `locations` (N, L): project and score maps only there (derangement only)."""
        if locations is not None:
            _check_pair(t, s)
            _require_derangement(negatives)
            t_pos, t_neg, s_at = _derangement_inputs(t, s, derangement(s.shape[0], s.device), locations)
            p_s = self.proj_s(s_at)
            return self.dot(self.proj_t(t_pos), p_s), self.dot(self.proj_t(t_neg), p_s)
        p_t, p_s = self.project(t, s)
        n = p_s.shape[0]
        pos = self.dot(p_t, p_s)
        if negatives == "derangement":
            return pos, self.dot(p_t[derangement(n, p_s.device)], p_s)
        if negatives == "all":
            if n < 2:
                raise ValueError(f"negative pairs need a batch of at least 2 images, got {n}")
            if p_s.dim() == 2:
                full = p_s @ p_t.t()  # (N_s, N_t)
            elif p_t.dim() == 2:
                full = torch.einsum("nhwd,md->nmhw", p_s, p_t)
            else:
                full = torch.einsum("nhwd,mhwd->nmhw", p_s, p_t)
            return pos, _off_diagonal(full * self.scale)
        raise ValueError(f"unknown negatives {negatives!r}; expected 'derangement' or 'all'")


def _require_derangement(negatives: str) -> None:
    if negatives != "derangement":
        raise ValueError(f"critic: sampled locations take negatives = 'derangement', got {negatives!r}")


def make_critic(kind: str, teacher_dim: int, student_dim: int, hidden: int, out_dim: int) -> nn.Module:
    """A critic by name: "convolve" or "project"."""
    if kind == "convolve":
        return ConvolveCritic(teacher_dim, student_dim, hidden)
    if kind == "project":
        return ProjectDotCritic(teacher_dim, student_dim, hidden, out_dim)
    raise ValueError(f"unknown critic {kind!r}; expected 'convolve' or 'project'")
