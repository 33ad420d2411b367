"""Model registry: a dict of factories filled by a decorator, as timm keeps it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

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


def create_model(name: str, num_classes: int = 100, **kwargs) -> FeatureModel:
    entry = model_entry(name)
    model = entry.factory(num_classes=num_classes, **kwargs)
    model.num_classes = num_classes
    model.input_size = entry.input_size
    return model
