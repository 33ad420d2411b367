"""Where the data is: --data-dir beats the recipe's data.root beats MIMKD_DATA, and a run says which it used."""

from click.testing import CliRunner
from helpers import write_image_folder

from mimkd_edge.cli import main
from mimkd_edge.data.datasets import load_splits, locate_data
from mimkd_edge.recipe import DataConfig, dumps_toml


def test_flag_beats_recipe_beats_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MIMKD_DATA", str(tmp_path / "env"))
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path / "recipe"))
    assert locate_data(cfg, str(tmp_path / "flag")) == locate_data(cfg, str(tmp_path / "flag"), None)
    assert (locate_data(cfg, str(tmp_path / "flag")).path.name, locate_data(cfg, str(tmp_path / "flag")).origin) \
        == ("flag", "--data-dir")
    assert (locate_data(cfg).path.name, locate_data(cfg).origin) == ("recipe", "data.root")
    bare = DataConfig(dataset="imagefolder")
    assert (locate_data(bare).path.name, locate_data(bare).origin) == ("env", "MIMKD_DATA")


def test_a_recipe_root_is_read_although_mimkd_data_is_set(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "env", classes=2, size=8)
    write_image_folder(tmp_path / "mine", classes=3, size=8)
    monkeypatch.setenv("MIMKD_DATA", str(tmp_path / "env"))
    splits = load_splits(DataConfig(dataset="imagefolder", root=str(tmp_path / "mine")))
    assert len(splits.classes) == 3 and splits.origin == "data.root"


def test_a_run_prints_where_its_data_came_from(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "env", classes=2, size=8)
    write_image_folder(tmp_path / "mine", classes=3, size=8)
    monkeypatch.setenv("MIMKD_DATA", str(tmp_path / "env"))
    recipe = tmp_path / "r.toml"
    recipe.write_text(dumps_toml({"name": "where", "data": {"dataset": "imagefolder", "root": str(tmp_path / "mine")},
                                  "student": {"model": "conv4"}, "method": {"name": "none"},
                                  "train": {"epochs": 1, "batch_size": 8, "milestones": [1]}}))
    result = CliRunner().invoke(main, ["train", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert f"data: {(tmp_path / 'mine').resolve()} (from data.root)" in result.output
