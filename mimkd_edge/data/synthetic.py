"""A small deterministic, learnable image set for tests and smoke runs (no download, no disk)."""

from __future__ import annotations

import numpy as np
import torch


def make_synthetic(n_train: int, n_test: int, num_classes: int, size: int):
    """Each class is a smooth random colour pattern; images are that pattern plus noise and a shift.

    Fixed seed: the same set in every run, whatever the recipe's seed.
    """
    g = torch.Generator().manual_seed(1234)
    low = torch.rand(num_classes, 3, 4, 4, generator=g)
    protos = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        noise = torch.randn(n, 3, size, size, generator=g) * 0.15
        images = (protos[labels] + noise).clamp(0, 1)
        return (images * 255).round().to(torch.uint8).numpy(), labels.numpy().astype(np.int64)

    xtr, ytr = split(n_train)
    xte, yte = split(n_test)
    return xtr, ytr, xte, yte, [f"class_{i}" for i in range(num_classes)]
