"""Memories of past embeddings that supply the negatives of the infoNCE / NCE bounds.

`MemoryBank` is CRD's memory: one row per training sample for each view (teacher and student),
updated as ``row ← normalise(m·row + (1−m)·embedding)`` with momentum m = 0.5 when that sample
is seen; negatives are rows of *other* samples, so the loader must yield sample indices.
`FifoQueue` is MoCo's alternative: the embeddings of the most recent batches, oldest overwritten
first; no indices needed and its size is the number of negatives, not the data set's.

Two ways to draw K negatives from a bank:
- per anchor (CRD): each image gets its own K rows, uniformly among the samples other than itself;
- shared: one set of K rows per batch, uniformly among the samples not in the batch, scored for
  every anchor by one (N, D) @ (D, K) product. Same expectation, correlated across the batch,
  and far cheaper than gathering N·K rows.

Both are plain `nn.Module`s whose rows live in registered buffers, so they are saved in
`state_dict` and checkpoints and move with `.to(device)`. Nothing here knows about distributed
training: a DDP trainer gathers embeddings and indices from every rank and calls `update` with the
result (the methods expose a hook for that), so every replica's memory stays the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _stack_views(emb: torch.Tensor | Sequence[torch.Tensor], views: int) -> torch.Tensor:
    """(V, N, D) from a (V, N, D) tensor, a sequence of V (N, D) tensors, or one (N, D) when V = 1."""
    if isinstance(emb, torch.Tensor):
        if emb.dim() == 2 and views == 1:
            emb = emb.unsqueeze(0)
    else:
        emb = torch.stack([e for e in emb])
    if emb.dim() != 3 or emb.shape[0] != views:
        raise ValueError(f"memory update: expected {views} views of (N, D) embeddings, got shape {tuple(emb.shape)}")
    return emb


def _initial_rows(views: int, rows: int, dim: int) -> torch.Tensor:
    """Random unit-norm rows (CRD and MoCo both start from random vectors of norm about 1)."""
    return F.normalize(torch.randn(views, rows, dim), dim=-1)


class MemoryBank(nn.Module):
    """One row per training sample and view; rows updated with momentum, optionally L2-normalised.

    Buffers: `bank` (views, num_samples, dim). Rows start as random unit vectors, as in CRD, so the
    first epoch's negatives are partly random until every sample has been seen once.
    """

    needs_index = True
    # Per-anchor scoring: when the bank has at most this many times K rows, score the query against
    # every row with one matmul and pick the K scores (exact same values), instead of gathering N·K
    # rows. Measured on a 2-core Zen 3 (bench/train_step.py): the matmul wins up to ~20–30× K rows.
    dense_ratio: float = 16.0

    def __init__(self, num_samples: int, dim: int, views: int = 2, momentum: float = 0.5, normalize: bool = True):
        super().__init__()
        if num_samples < 2:
            raise ValueError(f"memory bank: needs at least 2 samples, got {num_samples}")
        if not 0 <= momentum < 1:
            raise ValueError(f"memory bank: momentum must be in [0, 1), got {momentum}")
        self.num_samples, self.dim, self.views = num_samples, dim, views
        self.momentum, self.normalize = momentum, normalize
        self.register_buffer("bank", _initial_rows(views, num_samples, dim))

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}, dim={self.dim}, views={self.views}, momentum={self.momentum}"

    # -- drawing negatives -------------------------------------------------------------------------
    def draw(self, index: torch.Tensor, k: int, shared: bool = False) -> torch.Tensor:
        """Row indices of K negatives: (N, K) per anchor, never the anchor's own sample; or (K,)
        shared by the batch, never a sample of the batch. Uniform, with replacement (as CRD)."""
        index = index.to(self.bank.device).long().view(-1)
        if shared:
            banned = torch.unique(index)  # sorted
            allowed = self.num_samples - banned.numel()
            if allowed < 1:
                raise ValueError("memory bank: the batch covers every sample; no negatives left to draw")
            j = torch.randint(0, allowed, (k,), device=index.device)
            # Map j ∈ [0, allowed) to the j-th sample not in the batch: skip the banned ones below it.
            below = banned - torch.arange(banned.numel(), device=index.device)  # allowed samples before each ban
            return j + torch.searchsorted(below, j, right=True)
        j = torch.randint(0, self.num_samples - 1, (index.numel(), k), device=index.device)
        return j + (j >= index[:, None]).long()

    def rows(self, view: int, idx: torch.Tensor) -> torch.Tensor:
        """Rows of one view at indices of any shape → idx.shape + (dim,): a copy, not differentiable."""
        return self.bank[view].index_select(0, idx.reshape(-1)).view(*idx.shape, self.dim)

    def dot(self, query: torch.Tensor, view: int, idx: torch.Tensor) -> torch.Tensor:
        """⟨query_n, row⟩ for the rows `idx` of `view`: (N, K) for per-anchor idx (N, K), or for shared
        idx (K,). Differentiable with respect to `query` (N, dim). What backward needs is copied,
        so `update` may run between this forward and the backward."""
        query = query.float()
        if idx.dim() == 1:
            return query @ self.rows(view, idx).t()
        if self.num_samples <= self.dense_ratio * idx.shape[1]:
            bank = self.bank[view]
            if query.requires_grad:  # autograd keeps the rows for backward: a snapshot, so that
                bank = bank.clone()  # `update` may write the bank before backward runs
            return torch.gather(query @ bank.t(), 1, idx)
        return torch.bmm(self.rows(view, idx), query.unsqueeze(-1)).squeeze(-1)

    # -- updating -----------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, emb: torch.Tensor | Sequence[torch.Tensor], index: torch.Tensor) -> None:
        """Blend the batch's embeddings into their rows: row ← m·row + (1−m)·emb, then L2-normalise.

        `emb` is (views, N, dim) or a sequence of per-view (N, dim); `index` (N,) sample indices.
        Call with embeddings and indices gathered from every rank under DDP.
        """
        emb = _stack_views(emb, self.views).detach().to(self.bank.dtype)
        index = index.to(self.bank.device).long().view(-1)
        new = self.momentum * self.bank.index_select(1, index) + (1 - self.momentum) * emb
        if self.normalize:
            new = F.normalize(new, dim=-1)
        self.bank.index_copy_(1, index, new)


class FifoQueue(nn.Module):
    """The `size` most recent embeddings of each view, oldest overwritten first (MoCo's queue).

    Buffers: `queue` (views, size, dim) and `ptr` (the next row to write). Starts as random unit
    vectors. Every anchor is scored against the whole queue: K = size, shared by the batch.
    """

    needs_index = False

    def __init__(self, size: int, dim: int, views: int = 2, normalize: bool = True):
        super().__init__()
        if size < 1:
            raise ValueError(f"queue: size must be ≥ 1, got {size}")
        self.size, self.dim, self.views, self.normalize = size, dim, views, normalize
        self.register_buffer("queue", _initial_rows(views, size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}, views={self.views}"

    def draw(self, index: torch.Tensor | None, k: int, shared: bool = True) -> None:
        """The whole queue is the negative set: nothing to draw (returns None)."""
        return None

    def rows(self, view: int, idx: torch.Tensor | None = None) -> torch.Tensor:
        """A copy of the queued rows (all of them, or at `idx`): `update` may then overwrite the
        queue before backward reads them."""
        return self.queue[view].clone() if idx is None else self.queue[view].index_select(0, idx.reshape(-1))

    def dot(self, query: torch.Tensor, view: int, idx: torch.Tensor | None = None) -> torch.Tensor:
        """(N, size): every anchor against every queued embedding, one matmul."""
        return query.float() @ self.rows(view).t()

    @torch.no_grad()
    def update(self, emb: torch.Tensor | Sequence[torch.Tensor], index: torch.Tensor | None = None) -> None:
        """Enqueue the batch (index is ignored; accepted so banks and queues are interchangeable)."""
        emb = _stack_views(emb, self.views).detach().to(self.queue.dtype)
        if self.normalize:
            emb = F.normalize(emb, dim=-1)
        n = emb.shape[1]
        if n >= self.size:
            self.queue.copy_(emb[:, n - self.size:])
            self.ptr.zero_()
            return
        p = int(self.ptr)
        pos = (torch.arange(n, device=self.queue.device) + p) % self.size
        self.queue.index_copy_(1, pos, emb)
        self.ptr.fill_((p + n) % self.size)


def make_memory(kind: str, num_samples: int, dim: int, k: int, views: int = 2, momentum: float = 0.5,
                normalize: bool = True) -> MemoryBank | FifoQueue:
    """ "bank" (one row per sample; needs indices) or "queue" (K most recent embeddings)."""
    if kind == "bank":
        return MemoryBank(num_samples, dim, views, momentum, normalize)
    if kind == "queue":
        return FifoQueue(k, dim, views, normalize)
    raise ValueError(f"unknown memory {kind!r}; expected 'bank' or 'queue'")
