"""CIFAR's python batches (what torchvision downloads) read into 32×32 RGB splits."""

import pickle

import numpy as np
import pytest

from mimkd_edge.data import load_splits
from mimkd_edge.errors import UserError
from mimkd_edge.recipe import DataConfig


def _fake_cifar10(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return folder


def test_cifar_batches_load_as_32x32_rgb(tmp_path):
    _fake_cifar10(tmp_path)
    splits = load_splits(DataConfig(dataset="cifar10", root=str(tmp_path)))
    assert splits.train.images.shape == (20, 3, 32, 32) and splits.test.images.shape == (4, 3, 32, 32)
    assert (splits.channels, splits.image_size) == (3, 32) and splits.classes[0] == "c0"
    assert splits.mean == (0.4914, 0.4822, 0.4465)  # CIFAR-10's published statistics, not measured


def test_cifar_batches_at_another_geometry_are_refused(tmp_path):
    _fake_cifar10(tmp_path)
    with pytest.raises(UserError, match="CIFAR's python batches are 32×32 RGB"):
        load_splits(DataConfig(dataset="cifar10", root=str(tmp_path), image_size=64))
