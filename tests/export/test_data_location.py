"""A run remembers where its data was: export and bench find it later without --data-dir."""

import json

from helpers import tiny_table, write_image_folder

from mimkd_edge.engine.trainer import fit
from mimkd_edge.export import export_run
from mimkd_edge.recipe import parse_recipe


def test_export_finds_the_data_the_run_trained_on(tmp_path, monkeypatch):
    root = write_image_folder(tmp_path / "my data", size=8)
    table = tiny_table(name="folder")
    table["data"] = {"dataset": "imagefolder", "num_classes": 3, "image_size": 8}  # no data.root in the recipe
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    fit(parse_recipe(table, "test"), run, data_dir="my data")  # a relative --data-dir
    assert json.loads((run / "summary.json").read_text())["data"]["source"] == str(root.resolve())
    monkeypatch.chdir(run)  # somewhere else: the relative path no longer leads to the data
    result = export_run(run, onnx=True, exporter="torchscript")
    assert result.complete and result.manifest.data["source"] == str(root.resolve())


def test_an_image_folder_says_how_many_classes_it_has(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, size=8)
    table = tiny_table(name="inferred")
    table["data"] = {"dataset": "imagefolder", "root": str(root), "image_size": 8}  # no num_classes
    run = tmp_path / "run"
    summary = fit(parse_recipe(table, "test"), run)
    assert summary.data.classes == ["class0", "class1", "class2"]
    assert "num_classes = 3" in (run / "recipe.toml").read_text()  # the run's recipe is the resolved one
    result = export_run(run, onnx=True, exporter="torchscript")
    assert result.manifest.classes == ["class0", "class1", "class2"]
