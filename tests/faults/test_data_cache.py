"""The decoded-image and statistics caches of an image folder never serve stale pixels, labels or
normalisation: their key covers every file (path, size, times) and the class → label map, not only
the data root's own path and mtime."""

import os
import shutil

import numpy as np
import torch
from helpers import write_brightness_folder
from PIL import Image

from mimkd_edge.data import load_splits
from mimkd_edge.recipe import DataConfig


def _cfg(root) -> DataConfig:
    return DataConfig(dataset="imagefolder", root=str(root))


def _fresh(root, tmp_path, monkeypatch):
    """What a first run (an empty cache) reads from the folder as it is now."""
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "fresh-cache"))
    splits = load_splits(_cfg(root))
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "cache"))
    return splits


def _same(a, b) -> None:
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.train.labels, b.train.labels)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.test.labels, b.test.labels)
    assert (a.mean, a.std) == (b.mean, b.std)


def _distinct_mtimes(root) -> None:
    """Every file its own mtime, as files written over time have (a tight loop may give two the same)."""
    for i, p in enumerate(sorted(root.rglob("*.png"))):
        os.utime(p, ns=(1_600_000_000_000_000_000 + i * 10**9,) * 2)


def _keep_root_mtime(root):
    st = root.stat()
    return lambda: os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_swapping_two_class_folders_contents_is_not_served_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "cache"))
    root = write_brightness_folder(tmp_path / "data", classes=2)
    _distinct_mtimes(root)
    before = load_splits(_cfg(root))
    restore = _keep_root_mtime(root)
    for split in ("train", "test"):  # same file names in both classes: only the contents change places
        a, b, t = root / split / "k0", root / split / "k1", root / split / "swap"
        a.rename(t)
        b.rename(a)
        t.rename(b)
    restore()
    after = load_splits(_cfg(root))
    _same(after, _fresh(root, tmp_path, monkeypatch))
    assert not torch.equal(after.train.images, before.train.images)  # dark images now carry label 1


def test_a_file_moved_to_another_class_is_not_served_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "cache"))
    root = write_brightness_folder(tmp_path / "data", classes=3)
    before = load_splits(_cfg(root))
    restore = _keep_root_mtime(root)
    (root / "train" / "k0" / "0.png").rename(root / "train" / "k2" / "moved.png")
    (root / "train" / "k2" / "0.png").rename(root / "train" / "k0" / "moved.png")  # counts stay the same
    restore()
    after = load_splits(_cfg(root))
    _same(after, _fresh(root, tmp_path, monkeypatch))
    assert not torch.equal(after.train.labels, before.train.labels) or not torch.equal(
        after.train.images, before.train.images)


def test_rewritten_images_give_new_pixels_and_new_statistics(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "cache"))
    root = write_brightness_folder(tmp_path / "data", classes=2)
    before = load_splits(_cfg(root))
    restore = _keep_root_mtime(root)
    for p in (root / "train" / "k1").glob("*.png"):  # the bright class turns white, in place
        Image.fromarray(np.full((12, 12, 3), 255, np.uint8)).save(p)
    restore()
    after = load_splits(_cfg(root))
    _same(after, _fresh(root, tmp_path, monkeypatch))
    assert after.mean != before.mean


def test_renamed_class_folders_change_the_class_map(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMKD_CACHE", str(tmp_path / "cache"))
    root = write_brightness_folder(tmp_path / "data", classes=2)
    load_splits(_cfg(root))
    restore = _keep_root_mtime(root)
    for split in ("train", "test"):  # k0 → z0: the dark class now sorts last, so its label is 1
        shutil.move(root / split / "k0", root / split / "z0")
    restore()
    after = load_splits(_cfg(root))
    assert after.classes == ["k1", "z0"]
    _same(after, _fresh(root, tmp_path, monkeypatch))
