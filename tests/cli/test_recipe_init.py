"""`mimkd-edge recipe init`: complete recipes for a user's own folder, with what the folder says filled in."""

import tomllib

import pytest
from click.testing import CliRunner

from helpers import assert_one_line_error, write_brightness_folder, write_flat_folder
from mimkd_edge.cli import main
from mimkd_edge.data import load_splits
from mimkd_edge.recipe import load_recipe


def _flat(tmp_path):
    return write_flat_folder(tmp_path)


def test_init_writes_complete_recipes_with_the_folder_s_facts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    flat = _flat(tmp_path)
    result = CliRunner().invoke(main, ["recipe", "init", str(flat), "--student", "conv4", "--method", "mimkd"])
    assert result.exit_code == 0, result.output
    teacher, student = tmp_path / "recipes/digits/digits-teacher-resnet20.toml", \
        tmp_path / "recipes/digits/digits-conv4-mimkd.toml"
    raw = tomllib.loads(student.read_text())
    assert set(raw) == {"name", "seed", "data", "student", "teacher", "method", "train"}
    assert raw["teacher"]["checkpoint"] == "runs/digits-teacher-resnet20" and raw["train"]["epochs"] == 30
    data = raw["data"]
    assert (data["num_classes"], data["channels"], data["image_size"]) == (3, 1, 12)
    assert (data["test_fraction"], data["flip"], data["crop_padding"]) == (0.2, False, 1)
    recipe = load_recipe(student)  # valid as written
    splits = load_splits(recipe.data)
    assert list(recipe.data.mean) == list(splits.data_mean) and (len(splits.train), len(splits.test)) == (24, 6)
    assert load_recipe(teacher).method.name == "none" and "# " in student.read_text()  # commented
    assert "mimkd-edge train recipes/digits/digits-teacher-resnet20.toml" in result.output


def test_a_folder_with_its_own_splits_keeps_them(tmp_path):
    root = write_brightness_folder(tmp_path / "shapes", size=12)
    out = tmp_path / "r"
    result = CliRunner().invoke(main, ["recipe", "init", str(root), "--student", "conv4", "--method", "none",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    (written,) = out.iterdir()  # no teacher for a method that distils nothing
    assert tomllib.loads(written.read_text())["data"]["test_fraction"] == 0.0


@pytest.mark.parametrize(("args", "fragment"), [(["--student", "nope"], "--student: 'nope'"),
                                                (["--method", "magic"], "--method: expected one of"),
                                                (["--student", "conv4_mp"], "--student: conv4_mp cannot take 3×12×12")])
def test_bad_choices_are_one_line(tmp_path, args, fragment):
    root = write_brightness_folder(tmp_path / "shapes", size=12)
    result = CliRunner().invoke(main, ["recipe", "init", str(root), "--out", str(tmp_path / "r"), *args])
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "r").exists()


def test_an_existing_recipe_is_not_replaced_unasked(tmp_path):
    root = write_brightness_folder(tmp_path / "shapes", size=12)
    args = ["recipe", "init", str(root), "--student", "conv4", "--method", "none", "--out", str(tmp_path / "r")]
    assert CliRunner().invoke(main, args).exit_code == 0
    assert_one_line_error(CliRunner().invoke(main, args), "already exists", "--force")
    assert CliRunner().invoke(main, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize(("args", "fragment"), [
    (["--test-fraction", "1"], "--test-fraction: expected a number >= 0 and < 1"),
    (["--split-seed", str(2**32)], "--split-seed: expected a number >= 0"),
    (["--split-seed", "-1"], "--split-seed: expected a number >= 0"),
    (["--image-size", "0"], "--image-size: expected a number > 0")])
def test_split_settings_are_checked_by_the_library_before_the_folder_is_read(tmp_path, args, fragment):
    """One check, the recipe's own, and first: the folder named here does not even exist."""
    result = CliRunner().invoke(main, ["recipe", "init", str(tmp_path / "missing"), *args])
    assert_one_line_error(result, fragment)


def test_init_takes_its_defaults_from_the_library():
    from mimkd_edge.starter_recipe import DEFAULT_EPOCHS, DEFAULT_SPLIT_SEED, DEFAULT_TEST_FRACTION

    command = main.commands["recipe"].commands["init"]
    with command.make_context("init", ["FOLDER"]) as ctx:
        params = ctx.params
    assert (params["epochs"], params["test_fraction"], params["split_seed"]) == (DEFAULT_EPOCHS, DEFAULT_TEST_FRACTION,
                                                                               DEFAULT_SPLIT_SEED)
