"""An image folder keeps its own geometry through train → distill → export → bench: a 1-channel
28×28 folder and a 3-channel 64×64 one, with data-derived normalisation and inferred classes."""

import json

import onnx
import pytest
from click.testing import CliRunner

from helpers import write_brightness_folder
from mimkd_edge.cli import main
from mimkd_edge.recipe import dumps_toml


def _folder(root, channels, size):
    return write_brightness_folder(root, channels=channels, size=size, seed=channels * 1000 + size)


def _recipe(path, name, root, model, **extra):
    table = {"name": name, "seed": 0, "data": {"dataset": "imagefolder", "root": str(root)},
             "student": {"model": model}, "method": {"name": "none"},
             "train": {"epochs": 1, "batch_size": 8, "lr": 0.05, "milestones": [1]}}
    table.update(extra)
    path.write_text(dumps_toml(table))
    return path


@pytest.mark.parametrize("channels, size", [(1, 28), (3, 64)])
def test_native_geometry_end_to_end(tmp_path, channels, size):
    root = _folder(tmp_path / "data", channels, size)
    run = CliRunner()
    r = run.invoke(main, ["train", str(_recipe(tmp_path / "t.toml", "t", root, "conv4")), "--out", str(tmp_path / "T")])
    assert r.exit_code == 0, r.output
    teacher = {"model": "conv4", "checkpoint": str(tmp_path / "T")}
    r = run.invoke(main, ["distill", str(_recipe(tmp_path / "s.toml", "s", root, "conv4_mp", teacher=teacher,
                                                 method={"name": "kd"})), "--out", str(tmp_path / "S")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "S" / "summary.json").read_text())
    assert summary["data"]["classes"] == ["k0", "k1", "k2"] and summary["data"]["image_size"] == size
    assert len(summary["data"]["mean"]) == channels and 0.1 < summary["data"]["mean"][0] < 0.7
    recipe = (tmp_path / "S" / "recipe.toml").read_text()
    assert f"channels = {channels}" in recipe and f"image_size = {size}" in recipe and "num_classes = 3" in recipe

    r = run.invoke(main, ["export", str(tmp_path / "S"), "--onnx", "--openvino", "--exporter", "torchscript"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "S" / "export" / "manifest.json").read_text())
    assert m["input"]["shape"][1:] == [channels, size, size] and len(m["input"]["mean"]) == channels
    dims = onnx.load(str(tmp_path / "S" / "export" / "model_fp32.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1:] == [channels, size, size]
    import openvino as ov

    shape = ov.Core().read_model(str(tmp_path / "S" / "export" / "model_fp32.xml")).inputs[0].get_partial_shape()
    assert shape[0].is_dynamic and [shape[i].get_length() for i in (1, 2, 3)] == [channels, size, size]

    r = run.invoke(main, ["bench", str(tmp_path / "S"), "--cpu", "--backend", "onnxruntime,openvino", "--precision",
                          "fp32", "--iters", "5", "--warmup", "1", "--throughput-batch", "4",
                          "--results", str(tmp_path / "b.csv")])
    assert r.exit_code == 0, r.output
    assert "onnx-fp32" in r.output
