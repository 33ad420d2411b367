from __future__ import annotations

import pytest
import torch

from mimkd_edge.engine.trainer import fit
from mimkd_edge.recipe import parse_recipe


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished 1-epoch Conv-4 run on the synthetic set (shared by the export tests; read-only)."""
    table = {
        "name": "tiny-export", "seed": 0,
        "data": {"dataset": "synthetic", "num_classes": 4, "synthetic_train": 128, "synthetic_test": 64},
        "student": {"model": "conv4"}, "method": {"name": "none"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "milestones": [1], "device": "cpu"},
    }
    out = tmp_path_factory.mktemp("export-run") / "tiny-export"
    before = torch.get_num_threads()
    try:
        fit(parse_recipe(table, "test"), out)
    finally:
        torch.set_num_threads(before)
    return out
