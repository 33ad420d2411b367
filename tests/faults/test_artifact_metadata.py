"""`predict` trusts nothing an artifact says about itself: metadata that does not fit the graph, or
cannot be a normalisation, is one line naming the file; a NaN probability is never printed."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import assert_one_line_error
from mimkd_edge.cli import main
from mimkd_edge.rundir import RunDir


def _image(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def _with_metadata(source, target, **edits):
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key in edits:
            prop.value = edits[prop.key]
    onnx.save(model, str(target))
    return target


@pytest.mark.parametrize("key, value, fragment", [
    ("classes", json.dumps(["a", "b"]), "2 class names for 4 outputs"),
    ("classes", json.dumps(["a", "b", "c", "d", "e"]), "5 class names for 4 outputs"),
    ("classes", "5", "classes"),
    ("classes", json.dumps(["a", 1, None, "d"]), "classes"),
    ("input_size", json.dumps([3, 32]), "input_size"),
    ("input_size", json.dumps([3, 16, 16]), "(3, 16, 16)"),
    ("input_size", json.dumps([1, 32, 32]), "one per channel"),  # 3 means for 1 channel
    ("input_size", json.dumps([3, -32, -32]), "input_size"),
    ("input_size", json.dumps("3x32x32"), "input_size"),
    ("mean", json.dumps([0.5]), "mean"),
    ("mean", "[NaN, 0, 0]", "mean"),
    ("mean", json.dumps("abc"), "mean"),
    ("std", json.dumps([0, 0, 0]), "std"),
    ("std", json.dumps([1, 1, -1]), "std"),
    ("std", "[Infinity, 1, 1]", "std"),
])
def test_bad_metadata_is_one_line(exported_run, tmp_path, key, value, fragment):
    artifact = _with_metadata(RunDir(exported_run).export / "model_fp32.onnx", tmp_path / "bad.onnx", **{key: value})
    result = CliRunner().invoke(main, ["predict", str(artifact), str(_image(tmp_path))])
    assert_one_line_error(result, "bad.onnx", fragment)


def test_metadata_for_another_channel_count_than_the_graph(exported_run, tmp_path):
    artifact = _with_metadata(RunDir(exported_run).export / "model_fp32.onnx", tmp_path / "gray.onnx",
                              input_size="[1, 32, 32]", mean="[0.5]", std="[0.25]", colour_mode="L")
    result = CliRunner().invoke(main, ["predict", str(artifact), str(_image(tmp_path))])
    assert_one_line_error(result, "gray.onnx", "(1, 32, 32)", "(3, 32, 32)")


def _save_with_sound_metadata(graph, path):
    """`graph` as an artifact with sound metadata (4 classes, 3×32×32, mean/std): what is wrong is the graph."""
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"classes": json.dumps(list("abcd")), "input_size": "[3, 32, 32]",
                                   "normalisation_baked": "false", "mean": "[0.5, 0.5, 0.5]",
                                   "std": "[0.25, 0.25, 0.25]"})
    onnx.save(model, str(path))


def test_a_graph_of_another_input_rank_is_one_line(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "flat",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])])
    _save_with_sound_metadata(graph, tmp_path / "flat.onnx")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "flat.onnx"), str(_image(tmp_path))])
    assert_one_line_error(result, "flat.onnx", "4-D")


def test_non_finite_outputs_are_never_printed_as_probabilities(tmp_path):
    """A graph that returns NaN (its metadata sound) is refused, not shown as "nan %" with exit 0."""
    from onnx import TensorProto, helper

    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1, 4], [float("nan")] * 4)
    graph = helper.make_graph([helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
                               helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
                               helper.make_node("Mul", ["m2", "nan"], ["logits"])], "nan",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
                              [nan, helper.make_tensor("one", TensorProto.INT64, [1], [1])])
    _save_with_sound_metadata(graph, tmp_path / "nan.onnx")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "nan.onnx"), str(_image(tmp_path))])
    assert_one_line_error(result, "nan.onnx", "non-finite")
    assert "nan" not in result.output.replace("nan.onnx", "")
