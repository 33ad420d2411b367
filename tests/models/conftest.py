from __future__ import annotations

import functools

import pytest
import torch

from mimkd_edge.models import FeatureModel, create_model


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batches on a shared 2-core machine: one intra-op thread is many times faster than two
    spinning OpenMP threads under load. Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.cache
def _cached(name: str) -> FeatureModel:
    torch.manual_seed(0)
    return create_model(name, num_classes=10)


@pytest.fixture(scope="session")
def cached_model():
    """`cached_model(name)`: one seeded 10-class instance per model, shared by the tests that only
    read it (each sets train/eval itself and leaves no gradients behind)."""
    return _cached
