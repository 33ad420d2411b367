"""`mimkd-edge models [PATTERN]`."""

from __future__ import annotations

import click

from . import main


@main.command()
@click.argument("pattern", default="*")
@click.option("--size", type=int, default=None, help="Input side for MACs and map shapes (default: each model's own).")
def models(pattern, size):
    """List models matching PATTERN (shell glob) with parameters, MACs and feature-map shapes."""
    from ..console import console, table
    from ..models import create_model, list_models, map_shapes, model_entry
    from ..models.cost import count_macs, count_params

    names = list_models(pattern)
    if not names:
        from ..errors import UserError

        raise UserError(f"models: no model matches {pattern!r}")
    rows = []
    for name in names:
        entry = model_entry(name)
        s = size or entry.input_size
        m = create_model(name, num_classes=100 if entry.family == "cifar" else 1000)
        maps = ", ".join(f"{c}@{h}" for c, h, _ in map_shapes(m, s))
        rows.append([name, entry.family, s, count_params(m), count_macs(m, s), maps, m.num_features])
    console.print(table("models (params at 100 classes for CIFAR, 1000 for ImageNet)",
                        ["model", "family", "input", "params", "MACs", "maps (C@H)", "vector"], rows))
