"""No string from a file reaches the terminal with control characters: class names from an artifact,
a path or a recipe name in an error line, a cell of a table. ESC, C0 and C1 codes are removed and a
line break inside a line or a cell becomes a space, at the printing layer, so every command is covered."""

import json

import numpy as np
import onnx
from click.testing import CliRunner
from helpers import tiny_table
from PIL import Image

from mimkd_edge.cli import main
from mimkd_edge.console import fmt, plain, table
from mimkd_edge.recipe import dumps_toml
from mimkd_edge.rundir import RunDir

HOSTILE = "\x1b[2J\x1b]0;owned\x07cat\x9b31m\r\n| dog | 100.0% |\x00\x7f"
CONTROLS = [chr(c) for c in [*range(0x00, 0x20), *range(0x7f, 0xa0)]]


def _clean(text):
    found = sorted({repr(c) for c in text if c in CONTROLS and c != "\n"})
    assert not found, f"control characters printed: {found}"


def _with_classes(exported_run, tmp_path, classes):
    model = onnx.load(str(RunDir(exported_run).export / "model_fp32.onnx"))
    for prop in model.metadata_props:
        if prop.key == "classes":
            prop.value = json.dumps(classes)
    path = tmp_path / "hostile.onnx"
    onnx.save(model, str(path))
    return path


def test_class_names_from_an_artifact_are_printed_inert(exported_run, tmp_path):
    artifact = _with_classes(exported_run, tmp_path, [HOSTILE, "b", "c", "d"])
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    result = CliRunner().invoke(main, ["predict", str(artifact), str(image), "--top-k", "4"])
    assert result.exit_code == 0, result.output
    _clean(result.output)
    assert "| dog | 100.0% |" not in result.output.splitlines()  # no forged line of its own


def test_an_error_line_quoting_a_hostile_recipe_name(tmp_path):
    path = tmp_path / "r.toml"
    text = dumps_toml(tiny_table(name="NAME")).replace("NAME", "x\\u001b]0;owned\\u0007\\u001b[2J\\u009b")
    path.write_text(text)  # TOML escapes: a valid file whose name holds ESC, BEL and CSI
    result = CliRunner().invoke(main, ["recipe", "check", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    _clean(result.output)


def test_an_error_line_quoting_a_hostile_path(tmp_path):
    result = CliRunner().invoke(main, ["recipe", "check", str(tmp_path / "a\x1b[2Jb\nError: forged.toml")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    _clean(result.output)


def test_the_printing_layer_removes_control_characters():
    for text in (plain(HOSTILE).plain, plain(HOSTILE, "label\x1b[31m:").plain, fmt(HOSTILE)):
        _clean(text)
        assert "\n" not in text and "cat" in text and "dog" in text
    t = table("title\x1b[2J", ["name"], [[HOSTILE]])
    cells = [c.plain for c in t.columns[0]._cells] + [t.title.plain]
    for text in cells:
        _clean(text)
        assert "\n" not in text
