"""Shared builders for tests: tiny recipes on synthetic data."""

from __future__ import annotations

from mimkd_edge.recipe import Recipe, parse_recipe


def tiny_table(name: str = "tiny", model: str = "conv4", method: str = "none", epochs: int = 1, **extra) -> dict:
    table = {
        "name": name, "seed": 0,
        "data": {"dataset": "synthetic", "num_classes": 4, "synthetic_train": 96, "synthetic_test": 48},
        "student": {"model": model}, "method": {"name": method},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "milestones": [max(1, epochs - 1)]},
    }
    for key, value in extra.items():
        table[key] = value
    return table


def tiny_recipe(**kw) -> Recipe:
    return parse_recipe(tiny_table(**kw), "test")
