"""Weights that enter from outside a training run (an imported checkpoint, a teacher's weights file) are
checked finite where they enter: a NaN in a teacher otherwise surfaces epochs later, as a diverged loss
blamed on the learning rate."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UserError


def first_non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, in the dict's order."""
    for name, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def require_finite(state: dict[str, torch.Tensor], where: str | Path) -> None:
    """One line naming `where` and the first non-finite tensor; nothing when every tensor is finite."""
    bad = first_non_finite(state)
    if bad is not None:
        raise UserError(f"{where}: tensor {bad} holds NaN or infinite values; expected finite weights "
                        "(a diverged or damaged checkpoint)")
