"""Bad input of every kind is one line on stderr with exit code 2, naming the file or key and what
is expected; never a traceback, never a half-written or misplaced file."""

import gzip
import os
import shutil
import tarfile

import pytest
import torch
from click.testing import CliRunner
from helpers import assert_one_line_error, tiny_table, write_image_folder

from mimkd_edge.cli import main
from mimkd_edge.rundir import RunDir
from mimkd_edge.atomic import atomic_write
from mimkd_edge.errors import UserError
from mimkd_edge.recipe import dumps_toml


def recipe_file(tmp_path, file_name="r.toml", **edits):
    table = tiny_table()
    for key, value in edits.items():
        section, _, leaf = key.rpartition("__")
        (table.setdefault(section, {}) if section else table)[leaf] = value
    path = tmp_path / file_name
    path.write_text(dumps_toml(table))
    return path


def check(path):
    return CliRunner().invoke(main, ["recipe", "check", str(path)])


@pytest.mark.parametrize("edit, fragments", [
    ({"seed": 2**64}, ["seed", "an integer from 0 to 4294967295"]),
    ({"seed": 2**63 - 5}, ["seed", "an integer from 0 to"]),
    ({"train__epochs": 2**63 - 1}, ["train.epochs", "<= 100000"]),
    ({"train__batch_size": 2**63 - 1}, ["train.batch_size", "<="]),
    ({"data__image_size": 99999999}, ["data.image_size", "<= 4096"]),
    ({"train__lr": float("inf")}, ["train.lr", "a finite number"]),
    ({"name": ".."}, ["name", "not '.' or '..'"]),
])
def test_out_of_range_recipes(tmp_path, edit, fragments):
    assert_one_line_error(check(recipe_file(tmp_path, **edit)), "r.toml", *fragments)


def test_a_nul_in_the_name(tmp_path):
    path = recipe_file(tmp_path)
    path.write_text(path.read_text().replace('name = "tiny"', 'name = "a\\u0000b"'))
    assert_one_line_error(check(path), "r.toml", "name", "printable")


def test_markup_in_a_value_is_printed_as_it_is(tmp_path):
    folder = tmp_path / "[bold]x[/y]"
    folder.mkdir(parents=True)
    result = CliRunner().invoke(main, ["recipe", "check", str(folder / "missing.toml")])
    assert_one_line_error(result, "[bold]x[/y]")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A finished 1-epoch Conv-4 (4 classes) to distil from."""
    from helpers import tiny_recipe

    from mimkd_edge.engine.trainer import fit

    out = tmp_path_factory.mktemp("teacher") / "T"
    fit(tiny_recipe(name="T"), out)
    return out


def test_teacher_weights_of_another_shape(teacher, tmp_path):
    table = tiny_table(name="s", method="kd", teacher={"model": "conv4", "checkpoint": str(teacher)})
    table["data"]["num_classes"] = 5
    path = tmp_path / "s.toml"
    path.write_text(dumps_toml(table))
    result = CliRunner().invoke(main, ["distill", str(path), "--out", str(tmp_path / "S")])
    assert_one_line_error(result, "model.safetensors", "weights do not fit",
                          "fc.weight is (4, 64) in the file, (5, 64) in the model")


def test_export_when_recipe_and_weights_disagree(teacher, tmp_path):
    run = shutil.copytree(teacher, tmp_path / "T")
    recipe = (RunDir(run).recipe).read_text().replace("num_classes = 4", "num_classes = 6")
    (RunDir(run).recipe).write_text(recipe)
    result = CliRunner().invoke(main, ["export", str(run), "--onnx"])
    assert_one_line_error(result, "fc.bias is (4,) in the file, (6,) in the model")


@pytest.mark.parametrize("content, fragment", [
    (b"", "unreadable checkpoint"),
    ("list", "not a checkpoint of this tool"),
    ("no-epoch", "missing epoch"),
])
def test_broken_checkpoints_on_resume(teacher, tmp_path, content, fragment):
    run = shutil.copytree(teacher, tmp_path / "T")
    ckpt = RunDir(run).checkpoint
    if content == "list":
        torch.save([1, 2, 3], ckpt)
    elif content == "no-epoch":
        state = torch.load(ckpt, weights_only=True)
        del state["epoch"]
        torch.save(state, ckpt)
    else:
        ckpt.write_bytes(content)
    result = CliRunner().invoke(main, ["train", str(RunDir(run).recipe), "--out", str(run), "--resume",
                                       "--set", "train.epochs=2"])
    assert_one_line_error(result, str(ckpt), fragment)


def test_a_runs_folder_that_cannot_be_written(tmp_path, monkeypatch):
    (tmp_path / "runs").write_text("a file where the runs folder should be")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(CliRunner().invoke(main, ["train", str(recipe_file(tmp_path))]), "runs/tiny")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_a_read_only_runs_folder(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs").chmod(0o555)
    monkeypatch.chdir(tmp_path)
    try:
        assert_one_line_error(CliRunner().invoke(main, ["train", str(recipe_file(tmp_path))]), "runs/tiny")
    finally:
        (tmp_path / "runs").chmod(0o755)


def test_a_full_disk_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")

    def full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match="checkpoint.pt: cannot write \\(No space left on device\\)"):
        atomic_write(target, full)
    assert target.read_bytes() == b"previous" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def _folder_recipe(tmp_path, root, size=8):
    table = tiny_table(name="f")
    table["data"] = {"dataset": "imagefolder", "root": str(root), "num_classes": 3, "image_size": size}
    path = tmp_path / "f.toml"
    path.write_text(dumps_toml(table))
    return path


@pytest.mark.parametrize("side, fragment", [
    (4000, "decompression bomb"),  # over twice the limit: PIL refuses to open it
    (1100, "1100×1100 pixels"),  # between the limit and twice it: PIL only warns, we refuse
])
def test_a_decompression_bomb_in_an_image_folder(tmp_path, monkeypatch, side, fragment):
    from PIL import Image

    root = write_image_folder(tmp_path / "imgs", size=8)
    Image.new("1", (side, side)).save(root / "train" / "class0" / "bomb.png")  # megapixels in a few kB
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    result = CliRunner().invoke(main, ["train", str(_folder_recipe(tmp_path, root)), "--out", str(tmp_path / "o")])
    assert_one_line_error(result, "bomb.png", fragment)


def test_an_empty_class_folder(tmp_path):
    root = write_image_folder(tmp_path / "imgs", size=8)
    for f in (root / "train" / "class1").iterdir():
        f.unlink()
    result = CliRunner().invoke(main, ["train", str(_folder_recipe(tmp_path, root)), "--out", str(tmp_path / "o")])
    assert_one_line_error(result, "class1", "class folder holds no images")


def test_a_corrupted_archive_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "imgs", size=8)
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(root, arcname="imgs")
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xFF  # the gzip trailer's CRC-32: the content no longer matches it
    archive.write_bytes(bytes(data))
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(bytes(data))
    result = CliRunner().invoke(main, ["train", str(_folder_recipe(tmp_path, archive)), "--out", str(tmp_path / "o")])
    assert_one_line_error(result, "imgs.tar.gz", "cannot unpack")


def test_leftovers_of_a_killed_write_are_cleaned_and_files_are_readable(tmp_path):
    from helpers import tiny_recipe

    from mimkd_edge.engine.trainer import fit

    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"")  # what a kill during torch.save leaves
    old = os.umask(0o022)
    try:
        fit(tiny_recipe(), out)
    finally:
        os.umask(old)
    assert not list(out.glob(".*.tmp"))
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.name != RunDir(out).lock.name}
    assert set(modes.values()) == {0o644}, modes


class _Payload:
    """Unpickling this would run code: create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_payload_in_a_checkpoint_never_runs(teacher, tmp_path):
    run = shutil.copytree(teacher, tmp_path / "T")
    marker = tmp_path / "pwned"
    torch.save({"epoch": 0, "model": _Payload(marker)}, RunDir(run).checkpoint)
    result = CliRunner().invoke(main, ["train", str(RunDir(run).recipe), "--out", str(run), "--resume"])
    assert_one_line_error(result, "unreadable checkpoint")
    assert not marker.exists()
