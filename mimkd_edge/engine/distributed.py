"""Where this process trains: its device, and its place in a torchrun job (the process group, each rank's
seed of draws, the collectives the step needs beside DDP's)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"train.device: \"{name}\" asked for, but no CUDA device is available "
                        "(use \"auto\" or \"cpu\")")
    if name == "cuda" and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 when started plainly)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Distributed:
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not dist.is_initialized():
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process: the one that writes the run's files."""
    return int(os.environ.get("RANK", "0")) == 0


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The seed of one rank's negative draws in one epoch (numpy's SeedSequence mixes the three): distinct
    per rank, and fixed by the epoch, so a resumed run draws what an uninterrupted one would have."""
    return int(np.random.SeedSequence((seed, epoch, rank)).generate_state(1)[0])


def all_gather_cat(t: torch.Tensor) -> torch.Tensor:
    """Concatenate `t` (N_r, ...) from every rank along dim 0, in rank order; N_r may differ by rank."""
    world = dist.get_world_size()
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    longest = int(max(x.item() for x in sizes))
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[: int(k.item())] for p, k in zip(parts, sizes, strict=True)])


def average_gradients(module: nn.Module) -> None:
    """Average the gradients of the parameters DDP does not manage (the method's) over the ranks."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
