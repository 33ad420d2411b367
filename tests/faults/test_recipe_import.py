"""Hostile values in what a run writes and imports: any string survives recipe.toml (a data.root with a
newline wrote invalid TOML), non-finite teacher weights are refused where they enter, and a sweep's
duplicate run names are one line naming the sweep file."""

import tomllib

import pytest
import torch
from click.testing import CliRunner
from helpers import tiny_table

from mimkd_edge.cli import main
from mimkd_edge.engine.trainer import load_teacher
from mimkd_edge.errors import UserError
from mimkd_edge.models import create_model
from mimkd_edge.recipe import dump_recipe, dumps_toml, load_recipe, parse_recipe, toml_value
from mimkd_edge.rundir.checkpoint import save_weights
from mimkd_edge.schema import ConfigError

EVERY_CHARACTER = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)  # surrogates are not text

HOSTILE = ["a\nb", "line\r\nfeed", "nul\x00", "\x1b[2J\x1b]0;title\x07", "del\x7f", "c1\x85\x9b", "\u2028\u2029",
           "\ufeffbom", 'say "hi"', "C:\\path\\", "trailing\\", "'''", '"""', "\\u0000", "tab\there", "\f\b\v",
           "[data]\nroot = 1", "# not a comment", " leading and trailing ", "", EVERY_CHARACTER]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_any_string_survives_the_recipe_file(tmp_path, text):
    table = tiny_table(method="kd", teacher={"model": "conv4", "checkpoint": text, "recipe": text})
    table["data"]["root"] = text
    recipe = parse_recipe(table, "test")
    path = tmp_path / "recipe.toml"
    path.write_text(dump_recipe(recipe), encoding="utf-8")
    assert parse_recipe(tomllib.loads(path.read_text(encoding="utf-8")), str(path)) == recipe
    assert load_recipe(path) == recipe


@pytest.mark.parametrize("value", ["a\nb", "x\x1b", 'q"', 1, 0.1, True, [1, 2], ["a\n", "b"], float("inf")])
def test_a_single_value_reads_back_as_itself(value):
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value
    assert "\n" not in toml_value(value)  # sweeps put it in a --set override: one line


def test_the_recipe_file_stays_readable():
    text = dumps_toml(tiny_table())
    assert text.startswith('name = "tiny"\n') and "\n[data]\n" in text and "\n[train]\n" in text


@pytest.mark.parametrize("where", ["data.root", "teacher.checkpoint"])
def test_text_that_cannot_be_written_is_refused_at_parse(tmp_path, where):
    """An undecodable byte of a command-line argument arrives as a lone surrogate: no file can hold it."""
    path = tmp_path / "r.toml"
    path.write_text(dumps_toml(tiny_table(method="kd", teacher={"model": "conv4", "checkpoint": "T"})))
    with pytest.raises(ConfigError) as e:
        load_recipe(path, [f"{where}=/data/\udcff"])
    assert "r.toml" in str(e.value) and where in str(e.value) and "\n" not in str(e.value)
    str(e.value).encode("utf-8")  # the error line itself can be printed


def _reference_layout_resnet(state: dict) -> dict:
    """Our CIFAR-ResNet state dict under RepDistiller's names (see tests/models/test_repdistiller.py)."""
    out = {}
    for name, v in state.items():
        k = name.replace("stem.0.", "conv1.", 1) if name.startswith("stem.0.") else name
        k = k.replace("stem.1.", "bn1.", 1) if k.startswith("stem.1.") else k
        out["module." + k.replace(".shortcut.", ".downsample.")] = v
    return out


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_teacher_import_refuses_non_finite_weights(tmp_path, bad):
    state = _reference_layout_resnet(create_model("resnet8x4", num_classes=100).state_dict())
    names = [k for k, v in state.items() if v.is_floating_point()]
    state[names[5]].view(-1)[3] = bad
    state[names[9]].view(-1)[0] = float("nan")
    f = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"model": state}, f)
    args = ["teacher", "import", str(f), "--model", "resnet8x4", "--out", str(tmp_path / "T")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "ckpt_epoch_240.pth" in result.output and names[5] in result.output, result.output
    assert names[9] not in result.output and "finite" in result.output
    assert not (tmp_path / "T" / "model.safetensors").exists()


def test_a_teacher_with_non_finite_weights_is_refused_at_load(tmp_path):
    teacher = create_model("conv4", num_classes=4)
    state = teacher.state_dict()
    bn_var = next(k for k in state if k.endswith("running_var"))
    state[bn_var][0] = float("inf")
    path = tmp_path / "T" / "model.safetensors"
    path.parent.mkdir()
    save_weights(path, state)
    table = tiny_table(method="kd", teacher={"model": "conv4", "checkpoint": str(path)})
    table["data"]["channels"] = 3  # as build_training resolves it from the data
    recipe = parse_recipe(table, "test")
    with pytest.raises(UserError) as e:
        load_teacher(recipe)
    assert str(path) in str(e.value) and bn_var in str(e.value) and "\n" not in str(e.value)


def test_sweep_duplicate_names_name_the_sweep_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.toml").write_text(dumps_toml(tiny_table(name="r")))
    (tmp_path / "grid.toml").write_text('name = "x"\nout = "out"\n[[stage]]\nrecipes = ["r.toml"]\n'
                                        '[[stage]]\nrecipes = ["r.toml"]\n')
    result = CliRunner().invoke(main, ["sweep", "grid.toml", "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "grid.toml" in lines[0] and "distinct run names" in lines[0], result.output
