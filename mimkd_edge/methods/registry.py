"""Distillation methods: a registry of `DistillMethod` subclasses, one file each.

A method is an `nn.Module` that owns whatever trains beside the student (critics, regressors,
embeddings, memory banks) and turns the student's and teacher's `Features` into weighted loss terms.
The trainer sums the terms; it knows nothing of any method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..models.features import Features


@dataclass(frozen=True)
class MethodContext:
    """What a method may know of the two networks when it builds its trainable parts.

    Shapes only, never the networks themselves: a method must not own the student's parameters
    (they would be optimised twice) nor the teacher's (it is frozen).
    """

    num_classes: int
    num_samples: int  # size of the training set, for memory banks indexed by sample
    input_size: int
    student_maps: tuple[tuple[int, int, int], ...]  # (C, H, W), shallow → deep
    student_dim: int  # pre-classifier vector size
    teacher_maps: tuple[tuple[int, int, int], ...] = ()
    teacher_dim: int = 0
    total_steps: int = 0  # optimiser steps of the whole schedule, for terms that ramp in (DKD); 0: unknown


@dataclass
class MethodOutput:
    losses: dict[str, torch.Tensor]  # weighted terms; the loss is their sum
    estimates: dict[str, torch.Tensor] = field(default_factory=dict)  # detached diagnostics (MI estimates)

    @property
    def total(self) -> torch.Tensor:
        return sum(self.losses.values())  # type: ignore[return-value]


class DistillMethod(nn.Module):
    """Base class. Subclasses define a frozen `Options` dataclass whose defaults are the paper's."""

    Options: ClassVar[type]
    needs_teacher: ClassVar[bool] = True
    needs_index: ClassVar[bool] = False  # the loader must yield sample indices (memory banks)

    def __init__(self, opts, ctx: MethodContext):
        super().__init__()
        self.opts = opts
        self.ctx = ctx

    def forward(self, student: Features, teacher: Features | None, labels: torch.Tensor,
                index: torch.Tensor | None = None) -> MethodOutput:  # pragma: no cover - abstract
        raise NotImplementedError


_METHODS: dict[str, type[DistillMethod]] = {}


def register_method(name: str):
    def deco(cls: type[DistillMethod]) -> type[DistillMethod]:
        if name in _METHODS:
            raise ValueError(f"method {name!r} registered twice")
        _METHODS[name] = cls
        cls.method_name = name
        return cls

    return deco


def _ensure_loaded() -> None:
    from . import catalog  # noqa: F401  (imports every method module)


def list_methods() -> list[str]:
    _ensure_loaded()
    return sorted(_METHODS)


def method_class(name: str) -> type[DistillMethod]:
    _ensure_loaded()
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def create_method(name: str, opts, ctx: MethodContext) -> DistillMethod:
    return method_class(name)(opts, ctx)
