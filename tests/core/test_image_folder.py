"""Image folders: read into memory when a split fits data.resident_max_gb, kept on disk otherwise."""

import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import write_image_folder
from mimkd_edge.data import load_splits
from mimkd_edge.errors import UserError
from mimkd_edge.recipe import DataConfig


def _cfg(root, **kw) -> DataConfig:
    return DataConfig(dataset="imagefolder", root=str(root), num_classes=3, image_size=8, **kw)


def test_small_folder_is_resident_with_exact_pixels_and_labels(tmp_path):
    root = write_image_folder(tmp_path / "set")
    splits = load_splits(_cfg(root))
    assert splits.train.resident and splits.test.resident
    assert splits.train.images.shape == (30, 3, 8, 8) and splits.train.images.dtype == torch.uint8
    assert splits.classes == ["class0", "class1", "class2"]
    assert splits.train.labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    first = np.asarray(Image.open(root / "train" / "class1" / "000.png")).transpose(2, 0, 1)
    assert np.array_equal(splits.train.images[10].numpy(), first)


def test_split_over_the_budget_stays_on_disk_and_decodes_the_same_pixels(tmp_path):
    root = write_image_folder(tmp_path / "set")
    resident = load_splits(_cfg(root))
    # 30 train images of 3*8*8 bytes = 5,760 bytes: over a 4 KiB budget; the 12 test images fit
    streamed = load_splits(_cfg(root, resident_max_gb=4096 / 2**30))
    assert not streamed.train.resident and streamed.test.resident
    assert len(streamed.train) == 30 and torch.equal(streamed.train.labels, resident.train.labels)
    idx = torch.tensor([29, 0, 13])
    assert torch.equal(streamed.train.take(idx), resident.train.images[idx])
    assert torch.equal(torch.cat([x for x, _ in streamed.train.chunks(7)]), resident.train.images)


def test_archive_is_read_like_the_folder(tmp_path):
    root = write_image_folder(tmp_path / "set")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname="set")
    a, b = load_splits(_cfg(root)), load_splits(_cfg(archive))
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)


def test_two_runs_unpacking_one_archive_at_once_both_read_it(tmp_path, monkeypatch):
    """The second run to finish unpacking finds the folder already there: it uses it, no error."""
    import os

    from mimkd_edge.data import folder

    root = write_image_folder(tmp_path / "set")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname="set")
    real_replace = os.replace

    def replace_after_other(src, dst):  # the other run renames its copy in just before this one does
        other = tmp_path / "other"
        with tarfile.open(archive) as tf:
            tf.extractall(other, filter="data")
        real_replace(other, dst)
        real_replace(src, dst)  # ENOTEMPTY, as on Linux

    monkeypatch.setattr(folder.os, "replace", replace_after_other)
    dest = folder.unpack(archive)
    monkeypatch.setattr(folder.os, "replace", real_replace)
    assert (dest / "set" / "train" / "class0").is_dir()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".unpack-")]  # its own copy removed
    assert torch.equal(load_splits(_cfg(archive)).train.labels, load_splits(_cfg(root)).train.labels)


def test_missing_class_in_test_split_is_a_one_line_error(tmp_path):
    root = write_image_folder(tmp_path / "set")
    for f in (root / "test" / "class2").iterdir():
        f.unlink()
    (root / "test" / "class2").rmdir()
    with pytest.raises(UserError, match=r"test/class2: missing class folder"):
        load_splits(_cfg(root))


def test_undecodable_file_names_the_file(tmp_path):
    root = write_image_folder(tmp_path / "set")
    (root / "train" / "class0" / "000.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match=r"000.png: cannot decode image"):
        load_splits(_cfg(root))


def test_normalisation_is_measured_on_the_training_split(tmp_path):
    root = write_image_folder(tmp_path / "set")
    splits = load_splits(_cfg(root))
    pixels = splits.train.images.numpy().astype(np.float64) / 255  # independent: numpy over every pixel
    assert splits.mean == pytest.approx(tuple(pixels.mean((0, 2, 3))), abs=1e-4)
    assert splits.std == pytest.approx(tuple(pixels.std((0, 2, 3))), abs=1e-4)
    assert (splits.data_mean, splits.data_std) == (splits.mean, splits.std)
    streamed = load_splits(_cfg(root, resident_max_gb=4096 / 2**30))  # on disk: same figures
    assert (streamed.mean, streamed.std) == (splits.mean, splits.std)


def test_a_recipe_value_overrides_and_one_value_broadcasts(tmp_path):
    from helpers import tiny_table

    from mimkd_edge.recipe import parse_recipe

    root = write_image_folder(tmp_path / "set")
    table = tiny_table()
    table["data"] = {"dataset": "imagefolder", "root": str(root), "image_size": 8, "mean": 0.5, "std": [0.2]}
    recipe = parse_recipe(table, "t")
    splits = load_splits(recipe.data)
    assert splits.mean == (0.5, 0.5, 0.5) and splits.std == (0.2, 0.2, 0.2) and splits.data_mean != splits.mean
    table["data"]["mean"] = [0.1, 0.2]
    with pytest.raises(UserError, match="2 / 3 values for 3-channel images"):
        load_splits(parse_recipe(table, "t").data)


def test_statistics_are_cached_per_geometry(tmp_path):
    root = write_image_folder(tmp_path / "set")
    rgb = load_splits(_cfg(root))
    gray = load_splits(_cfg(root, channels=1))
    assert len(rgb.mean) == 3 and len(gray.mean) == 1
    pixels = gray.train.images.numpy().astype(np.float64) / 255
    assert gray.mean[0] == pytest.approx(pixels.mean(), abs=1e-4)  # measured on the gray images themselves
