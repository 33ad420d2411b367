"""Defective data files are read right or refused in one line naming the file: CIFAR python batches
whose labels do not match their images, and images wider than 8 bits (16-bit PNG, float TIFF), which
PIL's convert() would clip to all white or all black."""

import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mimkd_edge.cli import main
from mimkd_edge.data import load_splits
from mimkd_edge.errors import UserError
from mimkd_edge.imaging import decode_image, decode_images
from mimkd_edge.recipe import DataConfig

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _cifar10(root, batch=None, meta=None, key_type=str):
    """A tiny CIFAR-10 folder (4 images per batch); `batch` replaces data_batch_3's dict, `meta` the meta dict."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in BATCHES:
        d = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 9]}
        d = batch if batch is not None and name == "data_batch_3" else d
        (folder / name).write_bytes(pickle.dumps({key_type(k) if isinstance(k, str) else k: v for k, v in d.items()}))
    meta = {"label_names": [f"c{i}" for i in range(10)]} if meta is None else meta
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def _load(root):
    return load_splits(DataConfig(dataset="cifar10", root=str(root)))


def _images(n=4):
    return np.zeros((n, 3072), np.uint8)


@pytest.mark.parametrize("batch, fragments", [
    ({"data": _images(4), "labels": [0, 1, 2]}, ["3 labels", "4 images", "one label per image"]),
    ({"data": _images(4), "labels": [0, 1, 2, 3, 4]}, ["5 labels", "4 images"]),
    ({"data": _images(4), "labels": [0, 1, 2, 10]}, ["label 10", "0..9"]),
    ({"data": _images(4), "labels": [0, -1, 2, 3]}, ["label -1", "0..9"]),
    ({"data": _images(4), "labels": [0, 1, 2, 2**70]}, ["0..9"]),
    ({"data": _images(4), "labels": [0.0, 1.5, 2.0, 3.0]}, ["'labels'", "integer"]),
    ({"data": _images(4), "labels": ["a", "b", "c", "d"]}, ["'labels'", "integer"]),
    ({"data": _images(4), "labels": [True, False, True, False]}, ["'labels'", "integer"]),
    ({"data": _images(4), "labels": np.zeros((2, 2), np.int64)}, ["'labels'", "integer"]),
    ({"data": _images(4), "labels": 7}, ["'labels'", "integer"]),
    ({"data": _images(4), "labels": None}, ["'labels'"]),
    ({"data": np.zeros((4, 3072), np.float32), "labels": [0, 1, 2, 3]}, ["'data'", "uint8", "3072"]),
    ({"data": np.zeros((4, 100), np.uint8), "labels": [0, 1, 2, 3]}, ["'data'", "3072"]),
    ({"data": [[0] * 3072] * 4, "labels": [0, 1, 2, 3]}, ["'data'", "uint8"]),
    ({"data": "pixels", "labels": [0, 1, 2, 3]}, ["'data'", "uint8"]),
    ({"labels": [0, 1, 2, 3]}, ["'data'"]),
    ({"data": _images(4)}, ["'labels'"]),
])
def test_a_bad_cifar_batch_is_one_line_naming_it(tmp_path, batch, fragments):
    _cifar10(tmp_path, batch=batch)
    with pytest.raises(UserError) as e:
        _load(tmp_path)
    message = str(e.value)
    assert "\n" not in message and "data_batch_3" in message, message
    for f in fragments:
        assert f in message, message


@pytest.mark.parametrize("meta, fragment", [
    ({}, "'label_names'"),
    ({"label_names": [f"c{i}" for i in range(9)]}, "10 class names"),
    ({"label_names": "c0 c1"}, "10 class names"),
    ({"label_names": list(range(10))}, "10 class names"),
    ({"label_names": ["c"] * 10}, "distinct"),
    ([1, 2], "a dict"),
])
def test_bad_label_names_are_one_line_naming_the_meta_file(tmp_path, meta, fragment):
    _cifar10(tmp_path, meta=meta)
    with pytest.raises(UserError) as e:
        _load(tmp_path)
    assert "\n" not in str(e.value) and "batches.meta" in str(e.value) and fragment in str(e.value), str(e.value)


def test_a_missing_batch_file_is_one_line_naming_it(tmp_path):
    folder = _cifar10(tmp_path)
    (folder / "data_batch_4").unlink()
    with pytest.raises(UserError, match="data_batch_4"):
        _load(tmp_path)


def test_a_batch_that_is_not_a_pickle_is_one_line(tmp_path):
    folder = _cifar10(tmp_path)
    (folder / "test_batch").write_bytes(b"\x80\x04\x95garbage" * 10)
    with pytest.raises(UserError, match="test_batch"):
        _load(tmp_path)


def test_byte_keys_and_names_of_a_python2_pickle_read_the_same(tmp_path):
    _cifar10(tmp_path, key_type=str.encode, meta={b"label_names": [f"c{i}".encode() for i in range(10)]})
    splits = _load(tmp_path)
    assert splits.classes[9] == "c9" and splits.train.labels.tolist()[:4] == [0, 1, 2, 9]


def _png16(path, values):
    Image.fromarray(np.asarray(values, dtype=np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    return path


def test_a_16_bit_png_is_scaled_by_its_range_not_clipped(tmp_path):
    values = np.array([[0, 255, 256, 1000, 32768, 65280, 65535, 40000]] * 8, np.uint16)
    path = _png16(tmp_path / "deep.png", values)
    gray = decode_image(path, 8, channels=1)[0]
    assert np.array_equal(gray, (values >> 8).astype(np.uint8))  # the high byte, as PIL reads 16-bit colour
    rgb = decode_image(path, 8, channels=3)
    assert np.array_equal(rgb, np.repeat(gray[None], 3, 0))


def test_16_bit_pngs_train_on_their_pixels(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("test", 2)):
        for c in range(2):
            d = tmp_path / "deep" / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                _png16(d / f"{i}.png", rng.integers(0, 4096, (6, 6)) * (1 + 15 * c))  # 12-bit sensor values
    splits = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path / "deep")))
    assert splits.channels == 1
    assert splits.train.images.max() < 255 and splits.train.images[:4].max() < 16  # not clipped to white
    assert torch.equal(splits.train.images[0, 0], torch.from_numpy(np.asarray(Image.open(
        tmp_path / "deep" / "train" / "c0" / "0.png")) >> 8).to(torch.uint8))


@pytest.mark.parametrize("array, fragment", [
    (np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8), "float"),
    (np.arange(64, dtype=np.int32).reshape(8, 8) * 1000, "32-bit integer"),
])
def test_float_and_32_bit_images_are_refused_in_one_line(tmp_path, array, fragment):
    path = tmp_path / "wide.tiff"
    Image.fromarray(array).save(path)
    for channels in (1, 3):
        with pytest.raises(UserError) as e:
            decode_images([path], 8, channels)
        assert "\n" not in str(e.value) and str(path) in str(e.value) and fragment in str(e.value), str(e.value)


def test_predict_refuses_a_float_tiff_in_one_line(exported_run, tmp_path):
    artifact = next(exported_run.rglob("*.onnx"))
    path = tmp_path / "float.tiff"
    Image.fromarray(np.linspace(0, 1, 1024, dtype=np.float32).reshape(32, 32)).save(path)
    result = CliRunner().invoke(main, ["predict", str(artifact), str(path)])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "float.tiff" in result.output and "float" in lines[0], result.output
