"""Recipe validation: good recipes load; every kind of bad input is one line naming file and key."""

from pathlib import Path

import pytest
from helpers import tiny_table

from mimkd_edge.engine.sweep import expand, load_sweep
from mimkd_edge.recipe import dump_recipe, load_recipe, parse_recipe
from mimkd_edge.schema import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


GOOD = """
name = "t"
[data]
dataset = "synthetic"
num_classes = 4
[student]
model = "conv4_mp"
[teacher]
model = "conv4"
checkpoint = "runs/teacher/model.safetensors"
[method]
name = "kd"
[train]
epochs = 3
lr = 0.1
milestones = [1, 2]
"""


def test_good_recipe_loads_with_defaults(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    assert r.student.model == "conv4_mp" and r.teacher.model == "conv4"
    assert r.method.name == "kd" and r.method.options.alpha == 0.1 and r.method.options.temperature == 4.0
    assert r.train.lr == 0.1 and r.train.milestones == (1, 2) and r.train.batch_size == 64
    assert r.data.classes == 4


def test_resolved_recipe_round_trips(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    again = write(tmp_path, dump_recipe(r))
    assert load_recipe(again) == r


def test_overrides_are_typed_and_checked(tmp_path):
    p = write(tmp_path, GOOD)
    r = load_recipe(p, ["train.epochs=1", "method.alpha=0.5", "data.dataset=synthetic"])
    assert r.train.epochs == 1 and r.method.options.alpha == 0.5
    with pytest.raises(ConfigError, match=r"r.toml: train.epochs: expected an integer, got \"x\""):
        load_recipe(p, ["train.epochs=x"])


def test_switching_method_takes_that_methods_defaults(tmp_path):
    p = write(tmp_path, GOOD.replace('name = "kd"', 'name = "kd"\nalpha = 0.3'))
    assert load_recipe(p, ["method.name=none"]).method.name == "none"


@pytest.mark.parametrize("edit, message", [
    (("lr = 0.1", 'lr = "fast"'), 'train.lr: expected a finite number, got "fast"'),
    (("lr = 0.1", "lr = -1"), "train.lr: expected a number > 0, got -1"),
    (("epochs = 3", "epochs = 2.5"), "train.epochs: expected an integer, got 2.5"),
    (("epochs = 3", "epochz = 3"), "train.epochz: expected one of the known keys"),
    (('model = "conv4_mp"', 'model = "resnet9000"'), 'student.model: expected a model name'),
    (('name = "kd"', 'name = "magic"'), 'method.name: expected one of'),
    (('name = "kd"', 'name = "kd"\nalpha = 2'), "method.alpha: expected a number >= 0 and <= 1, got 2"),
    (('dataset = "synthetic"', 'dataset = "mnist"'), 'data.dataset: expected one of "cifar10"'),
    (("milestones = [1, 2]", "milestones = [2, 1]"), "train.milestones: expected strictly increasing"),
    (("[data]\ndataset = \"synthetic\"\nnum_classes = 4", "data = 3"), "data: expected a table, got 3"),
    (('name = "t"', 'name = "a/b"'), "name: expected a run directory name"),
    (('name = "t"', f'name = "{"é" * 101}"'), "name: expected a run directory name: 1-200 bytes"),  # 202 bytes
    (("[teacher]", "[nope]"), "nope: expected one of the known keys"),
])
def test_bad_values_name_file_and_key(tmp_path, edit, message):
    p = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    text = str(e.value)
    assert text.startswith(f"{p}: ") and message in text and "\n" not in text


def test_distillation_method_needs_a_teacher():
    with pytest.raises(ConfigError, match="teacher: expected a \\[teacher\\] table"):
        parse_recipe(tiny_table(method="kd"), "x.toml")


def test_malformed_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected valid TOML"):
        load_recipe(write(tmp_path, "name = "))
    with pytest.raises(ConfigError, match="no such file"):
        load_recipe(tmp_path / "absent.toml")


def test_every_committed_recipe_and_sweep_is_valid(monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # sweeps name their recipes relative to the repository root
    files = sorted((root / "recipes").rglob("*.toml"))
    assert len(files) > 40, "recipes missing"
    for f in files:
        if f.parent.name == "sweeps":
            assert expand(load_sweep(f))  # validates every recipe × override of the sweep
        else:
            load_recipe(f)
