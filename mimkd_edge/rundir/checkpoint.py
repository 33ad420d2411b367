"""Checkpoints and weights: written atomically, read without ever unpickling code.

Checkpoints are torch files loaded with `weights_only=True` (tensors and plain containers only);
weights are safetensors, checked by name and shape before they are loaded into a model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load, load_file, save_file

from ..atomic import atomic_write
from ..errors import UserError, one_line


def save_checkpoint(path: str | Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path) -> dict:
    """Tensors and plain containers only (`weights_only=True`): a checkpoint cannot run code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: unreadable checkpoint ({one_line(e)})") from None


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights(path: str | Path, data: bytes | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a weights file, or of its `data` already read (so a caller can hash what it loads)."""
    try:
        return load_file(str(path), device="cpu") if data is None else load(data)
    except Exception as e:
        raise UserError(f"{path}: unreadable weights file ({one_line(e)})") from None


def load_model_weights(model: torch.nn.Module, path: str | Path, what: str, data: bytes | None = None) -> None:
    """Load a weights file (or its `data`, read from `path`) strictly: names and shapes (see `load_state`)."""
    load_state(model, load_weights(path, data), path, what)


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str | Path, what: str) -> None:
    """Load a state dict strictly: names and shapes. A mismatch is one line naming `where` and the
    first bad keys (a ResNet-8x4 given ResNet-20 weights, a 10-class head for num_classes = 5)."""
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state][:3]
    problems += [f"unexpected {k}" for k in state if k not in own][:3]
    problems += [f"{k} is {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
                 for k, v in own.items() if k in state and state[k].shape != v.shape][:3]
    if problems:
        raise UserError(f"{where}: weights do not fit {what} ({'; '.join(problems)})")
    model.load_state_dict(state)
