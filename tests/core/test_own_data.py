"""A user's own image folder: a CIFAR recipe does not silently take it (its normalisation would be CIFAR's),
a folder of class folders is split by a seeded fraction, and its augmentation defaults do not flip."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import assert_one_line_error, write_brightness_folder, write_image_folder
from mimkd_edge.cli import main
from mimkd_edge.data import ImageSet, load_splits, make_loader, resolve_recipe
from mimkd_edge.data.cifar import CIFAR10_CLASSES
from mimkd_edge.recipe import DataConfig, parse_recipe


def _flat_folder(root, classes=3, per_class=10, size=12):
    """ROOT/<class>/*.png, gray, no train/ or test/."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(root / f"c{c}" / f"{i}.png")
    return root


def test_data_dir_with_a_cifar_recipe_on_another_folder_is_one_line(tmp_path):
    digits = write_brightness_folder(tmp_path / "digits", channels=1, size=12, classes=3)
    result = CliRunner().invoke(main, ["train", "recipes/quick/teacher.toml", "--data-dir", str(digits),
                                       "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "is not CIFAR-10", 'data.dataset = "imagefolder"', "1×12×12")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_an_image_folder_of_cifar10_is_still_read_for_a_cifar_recipe(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in CIFAR10_CLASSES:
            (tmp_path / "c10" / split / name).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "c10" / split / name
                                                                                    / "0.png")
    splits = load_splits(DataConfig(dataset="cifar10"), str(tmp_path / "c10"))
    assert splits.mean == (0.4914, 0.4822, 0.4465) and len(splits.classes) == 10  # CIFAR's published statistics


def test_a_flat_folder_is_split_by_a_seeded_stratified_fraction(tmp_path):
    root = _flat_folder(tmp_path / "flat")
    cfg = DataConfig(dataset="imagefolder", root=str(root), test_fraction=0.2)
    a, b = load_splits(cfg), load_splits(cfg)
    assert (len(a.train), len(a.test)) == (24, 6) and a.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(a.test.images, b.test.images)  # the same images every time
    other = load_splits(DataConfig(dataset="imagefolder", root=str(root), test_fraction=0.2, split_seed=1))
    assert not torch.equal(a.test.images, other.test.images)
    train = {tuple(x.flatten().tolist()) for x in a.train.images}
    assert not any(tuple(x.flatten().tolist()) in train for x in a.test.images)  # no image in both


def test_a_flat_folder_without_a_test_fraction_is_one_line(tmp_path):
    root = _flat_folder(tmp_path / "flat")
    with pytest.raises(Exception, match="test_fraction") as e:
        load_splits(DataConfig(dataset="imagefolder", root=str(root)))
    assert "recipe init" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(("dataset", "expected"), [("imagefolder", (1, False)), ("synthetic", (4, True))])
def test_augmentation_defaults_per_data_set(tmp_path, dataset, expected):
    root = write_image_folder(tmp_path / "set", size=12)
    table = {"name": "a", "student": {"model": "conv4"},
             "data": {"dataset": dataset, "root": str(root), "num_classes": 3}}
    recipe = parse_recipe(table, "t")
    resolved = resolve_recipe(recipe, load_splits(recipe.data))
    assert (resolved.data.crop_padding, resolved.data.flip) == expected  # image folder: 12 // 8 = 1 pixel, no flip
    table["data"].update(crop_padding=0, flip=True)
    asked = resolve_recipe(parse_recipe(table, "t"), load_splits(recipe.data))
    assert (asked.data.crop_padding, asked.data.flip) == (0, True)


def test_flip_off_and_no_crop_leave_training_images_as_they_are():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (16, 1, 6, 6), dtype=np.uint8))
    data = ImageSet(images, torch.zeros(16, dtype=torch.long))
    plain = make_loader(data, 16, (0.0,), (1.0,), train=True, padding=0, flip=False)
    x, _, idx = next(iter(plain.epoch(0)))
    assert torch.allclose(x, images[idx].float() / 255)
    flipped = make_loader(data, 16, (0.0,), (1.0,), train=True, padding=0, flip=True)
    x, _, idx = next(iter(flipped.epoch(0)))
    assert not torch.allclose(x, images[idx].float() / 255)  # flips are drawn, so some image is mirrored
