"""End to end through the CLI on tiny synthetic data: train a teacher, distil a student, bad input."""

import json

import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error, tiny_table

from mimkd_edge.cli import main
from mimkd_edge.recipe import dumps_toml


def _write(path, table):
    path.write_text(dumps_toml(table))
    return path


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    recipe = _write(tmp / "teacher.toml", tiny_table(name="teacher", model="conv4"))
    result = CliRunner().invoke(main, ["train", str(recipe), "--out", str(tmp / "T")])
    assert result.exit_code == 0, result.output
    return tmp


def test_help_lists_commands():
    out = CliRunner().invoke(main, ["--help"]).output
    for command in ("train", "distill", "models", "recipe"):
        assert command in out


def test_models_table():
    result = CliRunner().invoke(main, ["models", "conv4*"])
    assert result.exit_code == 0
    assert "conv4_mp" in result.output and "64@16" in result.output


def test_train_writes_run_directory(teacher_run):
    summary = json.loads((teacher_run / "T" / "summary.json").read_text())
    assert summary["method"] == "none" and summary["student"]["model"] == "conv4"


def test_distill_from_the_teacher(teacher_run):
    table = tiny_table(name="student", model="conv4_mp", method="kd",
                       teacher={"model": "conv4", "checkpoint": str(teacher_run / "T" / "model.safetensors")})
    recipe = _write(teacher_run / "student.toml", table)
    result = CliRunner().invoke(main, ["distill", str(recipe), "--set", "train.epochs=1",
                                       "--out", str(teacher_run / "S")])
    assert result.exit_code == 0, result.output
    summary = json.loads((teacher_run / "S" / "summary.json").read_text())
    assert summary["teacher"]["model"] == "conv4" and len(summary["teacher"]["sha256"]) == 64
    metrics = json.loads((teacher_run / "S" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ce", "kd", "test_acc"} <= metrics.keys()


@pytest.mark.parametrize("overrides, terms", [
    (["method.name=dkd"], {"ce", "tckd", "nckd"}),
    (["method.name=dkd", "method.standardize=true"], {"ce", "tckd", "nckd"}),
    (["method.name=kd", "method.standardize=true"], {"ce", "kd"}),
])
def test_distill_switches_to_the_newer_logit_methods_from_the_command_line(teacher_run, overrides, terms):
    table = tiny_table(name="student", model="conv4_mp", method="kd",
                       teacher={"model": "conv4", "checkpoint": str(teacher_run / "T" / "model.safetensors")})
    recipe = _write(teacher_run / "student-logit.toml", table)
    out = teacher_run / ("L-" + "-".join(overrides).replace("=", "_"))
    args = [a for o in overrides for a in ("--set", o)]
    result = CliRunner().invoke(main, ["distill", str(recipe), *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert terms <= metrics.keys()
    recorded = (out / "recipe.toml").read_text()
    assert ("standardize = true" in recorded) == ("method.standardize=true" in overrides)


def test_missing_teacher_checkpoint_names_the_command(tmp_path):
    table = tiny_table(name="s", method="kd",
                       teacher={"model": "conv4", "checkpoint": str(tmp_path / "none" / "model.safetensors")})
    recipe = _write(tmp_path / "s.toml", table)
    result = CliRunner().invoke(main, ["distill", str(recipe), "--out", str(tmp_path / "S")])
    assert_one_line_error(result, "teacher.checkpoint", "mimkd-edge train recipes/teachers/conv4.toml")


@pytest.mark.parametrize("args, fragments", [
    (["train", "{r}", "--set", "train.lr=fast"], ['train.lr: expected a finite number, got "fast"']),
    (["train", "{r}", "--set", "nonsense"], ["--set: expected KEY.PATH=VALUE"]),
    (["recipe", "check", "{r}", "--set", "student.model=nope"], ["student.model"]),
    (["train", "{missing}"], ["no such file"]),
    (["distill", "{r}"], ['method.name is "none"']),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragments):
    recipe = _write(tmp_path / "r.toml", tiny_table())
    args = [a.format(r=recipe, missing=tmp_path / "missing.toml") for a in args]
    assert_one_line_error(CliRunner().invoke(main, args), *fragments)


def test_recipe_check_accepts_good_recipe(tmp_path):
    recipe = _write(tmp_path / "r.toml", tiny_table())
    result = CliRunner().invoke(main, ["recipe", "check", str(recipe)])
    assert result.exit_code == 0 and "ok" in result.output
