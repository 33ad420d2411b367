"""Memories of past embeddings that supply the negatives of the infoNCE / NCE bounds.

`MemoryBank` is CRD's memory: one row per training sample for each view (teacher and student),
updated as ``row ← normalise(m·row + (1−m)·embedding)`` with momentum m = 0.5 when that sample
is seen; negatives are rows of *other* samples, so the loader must yield sample indices.

Two ways to draw K negatives from a bank:
- per anchor (CRD): each image gets its own K rows, uniformly among the samples other than itself;
- shared: one set of K rows per batch, uniformly among the samples not in the batch, scored for
  every anchor by one (N, D) @ (D, K) product. Same expectation, correlated across the batch,
  and far cheaper than gathering N·K rows.

Both memories below (`MemoryBank`, `TeacherMemory`) are plain `nn.Module`s whose rows live in
registered buffers, so they are saved in `state_dict` and checkpoints and move with `.to(device)`.
Nothing here knows about distributed training: a DDP trainer gathers embeddings and indices from
every rank and calls `update` with the result (the methods expose a hook for that), so every
replica's memory stays the same. Negatives are drawn from the global RNG unless a memory has a
`generator` of its own: a DDP trainer gives each rank one seeded by its rank (`seed_draws`), so the
ranks draw different rows and a step scores K × world negatives, not the same K on every rank.

`TeacherMemory` is MIMKD's: raw pre-classifier vectors of the *frozen* teacher, stored as they
came (never blended, never normalised) and projected through the current critic each time they
are used. A stored row is then a draw from the same distribution as a fresh one, so the infoNCE
negatives cannot be told from the positive by their age (see `mimkd.py` for why that matters).
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
    generator: torch.Generator | None = None  # where negatives are drawn from (None: the global RNG)
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
            j = torch.randint(0, allowed, (k,), device=index.device, generator=self.generator)
            # Map j ∈ [0, allowed) to the j-th sample not in the batch: skip the banned ones below it.
            below = banned - torch.arange(banned.numel(), device=index.device)  # allowed samples before each ban
            return j + torch.searchsorted(below, j, right=True)
        j = torch.randint(0, self.num_samples - 1, (index.numel(), k), device=index.device, generator=self.generator)
        return j + (j >= index[:, None]).long()

    def rows(self, view: int, idx: torch.Tensor) -> torch.Tensor:
        """Rows of one view at indices of any shape → idx.shape + (dim,): a copy, not differentiable."""
        return self.bank[view].index_select(0, idx.reshape(-1)).view(*idx.shape, self.dim)

    def dot(self, query: torch.Tensor, view: int, idx: torch.Tensor) -> torch.Tensor:
        """⟨query_n, row⟩ for the rows `idx` of `view`: (N, K) for per-anchor idx (N, K), or for shared
        idx (K,). Differentiable with respect to `query` (N, dim). What backward needs is copied,
        so `update` may run between this forward and the backward.

        Always in float32, autocast or not: NCE and infoNCE subtract scores that differ in the third
        digit (CRD's term lost ~10 % of its value under bf16 autocast when these products ran in bf16)."""
        with torch.autocast(query.device.type, enabled=False):
            return self._dot(query.float(), view, idx)

    def _dot(self, query: torch.Tensor, view: int, idx: torch.Tensor) -> torch.Tensor:
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


class TeacherMemory(nn.Module):
    """Raw vectors of a frozen network: the latest one per sample ("bank") or the `size` most recent
    ("queue"). Only rows written at least once are ever drawn, so no random start row — which a
    critic could tell from a real vector — serves as a negative.

    Buffers: `rows` (R, dim), `filled` (R,) bool and `ptr` (the queue's next row). A bank row is
    overwritten by the sample's newest vector: the teacher does not change, so the newest vector
    of sample j is a draw of f_t(augmented x_j), exactly what a fresh negative would be.
    """

    generator: torch.Generator | None = None  # where negatives are drawn from (None: the global RNG)

    def __init__(self, kind: str, num_samples: int, size: int, dim: int):
        super().__init__()
        if kind not in ("bank", "queue"):
            raise ValueError(f"unknown memory {kind!r}; expected 'bank' or 'queue'")
        if kind == "bank" and num_samples < 2:
            raise ValueError(f"memory bank: needs at least 2 samples, got {num_samples}")
        if size < 1:
            raise ValueError(f"memory: size must be ≥ 1, got {size}")
        self.kind, self.dim, self.size = kind, dim, size
        self.needs_index = kind == "bank"
        n_rows = num_samples if kind == "bank" else size
        self.register_buffer("rows", torch.zeros(n_rows, dim))
        self.register_buffer("filled", torch.zeros(n_rows, dtype=torch.bool))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"kind={self.kind}, rows={self.rows.shape[0]}, dim={self.dim}, size={self.size}"

    def draw(self, index: torch.Tensor | None) -> torch.Tensor:
        """Indices of at most `size` negatives, shared by the batch, uniform without replacement among
        the filled rows — for a bank, never a sample of the batch. Fewer while the memory fills."""
        allowed = self.filled.clone()
        batch = 0
        if self.kind == "bank":
            if index is None:
                raise ValueError("memory bank: needs the batch's sample indices")
            index = index.to(allowed.device).long().view(-1)
            allowed[index] = False
            batch = index.numel()
        if not self._has_room(batch):  # still filling: count the allowed rows (a device read)
            n_allowed = int(allowed.sum())
            if n_allowed <= self.size:
                return allowed.nonzero().flatten()
        keys = torch.rand(allowed.shape[0], device=allowed.device, generator=self.generator).masked_fill_(~allowed, 2.0)
        return keys.topk(self.size, largest=False).indices  # the smallest random keys: a uniform subset

    def _has_room(self, batch: int) -> bool:
        """Whether at least `size` rows are filled beyond any batch of this size — then every draw has
        `size` allowed rows without counting them. Read from the device until true, then remembered
        for batches up to that size (rows are never emptied): a filled memory costs no device read."""
        if batch > getattr(self, "_room_for", -1) and bool(self.filled.sum() >= self.size + batch):
            self._room_for = batch
        return batch <= getattr(self, "_room_for", -1)

    def get(self, idx: torch.Tensor) -> torch.Tensor:
        """The rows at `idx` (a copy: `update` may overwrite the memory before backward)."""
        return self.rows.index_select(0, idx)

    @torch.no_grad()
    def update(self, vectors: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """Store the batch's vectors (N, dim): at their samples' rows (bank), or oldest-first (queue).
        Call with every rank's vectors and indices under DDP."""
        vectors = vectors.detach().to(self.rows.dtype)
        if self.kind == "bank":
            if index is None:
                raise ValueError("memory bank: needs the batch's sample indices")
            pos = index.to(self.rows.device).long().view(-1)
        else:
            n = vectors.shape[0]
            if n > self.size:
                vectors, n = vectors[n - self.size:], self.size
            pos = (torch.arange(n, device=self.rows.device) + self.ptr) % self.size
            self.ptr.copy_((self.ptr + n) % self.size)
        self.rows.index_copy_(0, pos, vectors)
        self.filled[pos] = True


def seed_draws(module: nn.Module, seed: int) -> None:
    """Draw the negatives of every memory under `module` from a generator of its own (on the memory's
    device), seeded `seed`. Under DDP the trainer calls this with a seed per rank (and epoch): without
    it every rank, seeded alike, would draw the very same negative indices."""
    for memory in module.modules():
        if isinstance(memory, (MemoryBank, TeacherMemory)):
            device = next(memory.buffers()).device
            if memory.generator is None or memory.generator.device != device:
                memory.generator = torch.Generator(device=device)
            memory.generator.manual_seed(seed)
