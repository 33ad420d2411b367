"""Model registry: a dict of factories filled by a decorator, as timm keeps it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from collections.abc import Callable

import torch
from torch import nn

from .features import FeatureModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., FeatureModel]
    family: str  # "cifar" or "imagenet"
    input_size: int


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str | None = None, *, family: str = "cifar", input_size: int = 32):
    """Decorator: `@register_model()` on `def resnet20(num_classes=100, **kw) -> FeatureModel`."""

    def deco(fn: Callable[..., FeatureModel]) -> Callable[..., FeatureModel]:
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} registered twice")
        _REGISTRY[key] = ModelEntry(key, fn, family, input_size)
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the zoo package runs every @register_model once.
    from . import zoo  # noqa: F401


def list_models(pattern: str = "*") -> list[str]:
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def is_model(name: str) -> bool:
    _ensure_loaded()
    return name in _REGISTRY


def model_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, num_classes: int = 100, in_chans: int = 3, **kwargs) -> FeatureModel:
    """Model `name` with `num_classes` outputs taking `in_chans`-channel images (timm's name for it).

    Every zoo model is written for RGB; another channel count replaces the stem convolution (the first
    convolution that reads the image) by one with `in_chans` inputs, as timm adapts its input conv:
    trained weights are summed over the RGB channels (1 channel) or tiled and rescaled (more), so a
    pretrained stem keeps its response to the luminance it was trained on.
    """
    entry = model_entry(name)
    model = entry.factory(num_classes=num_classes, **kwargs)
    if in_chans != 3:
        adapt_input_conv(model, in_chans)
    model.num_classes = num_classes
    model.in_chans = in_chans
    model.input_size = entry.input_size
    return model


def adapt_input_conv(model: nn.Module, in_chans: int) -> None:
    """Replace the first Conv2d with 3 input channels by one with `in_chans` (see create_model)."""
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.in_channels == 3 and child.groups == 1:
                new = nn.Conv2d(in_chans, child.out_channels, child.kernel_size, child.stride, child.padding,
                                child.dilation, 1, child.bias is not None, child.padding_mode)
                with torch.no_grad():
                    w = child.weight
                    if in_chans == 1:
                        new.weight.copy_(w.sum(1, keepdim=True))
                    else:
                        new.weight.copy_(w.repeat(1, (in_chans + 2) // 3, 1, 1)[:, :in_chans] * (3 / in_chans))
                    if child.bias is not None:
                        new.bias.copy_(child.bias)
                setattr(parent, child_name, new)
                return
    raise ValueError(f"{type(model).__name__}: no 3-channel input convolution to adapt to {in_chans} channels")
