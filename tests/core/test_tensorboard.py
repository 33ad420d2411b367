"""TensorBoard event files in RUN/tb/: every term, estimate, accuracy, lr and step time per epoch, read back;
no event files, and no error, where tensorboard is not installed."""

import json
import sys

import pytest
from helpers import fit_until_interrupted, tiny_recipe

from mimkd_edge.engine.tensorboard_log import epoch_scalars
from mimkd_edge.engine.trainer import fit
from mimkd_edge.rundir import RunDir


def _events(run) -> dict[str, list[tuple[int, float]]]:
    """tag → [(epoch, value)] as TensorBoard reads RUN/tb/."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(RunDir(run).tensorboard))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_epoch_scalars_name_every_term_and_estimate():
    record = {"epoch": 3, "lr": 0.05, "steps": 4, "loss": 2.5, "ce": 1.0, "global": -0.5, "local": 0.9,
              "mi_global": 0.5, "mi_local": -1.2, "mi_feature_0": -1.3, "train_acc": 40.0, "seconds": 2.0,
              "images_per_s": 64.0, "val_acc": 35.0, "val_loss": 1.9, "test_acc": 36.0, "test_loss": 1.8}
    assert epoch_scalars(record) == {
        "loss/total": 2.5, "loss/ce": 1.0, "loss/global": -0.5, "loss/local": 0.9,
        "mi/global": 0.5, "mi/local": -1.2, "mi/feature_0": -1.3, "lr": 0.05,
        "accuracy/train": 40.0, "accuracy/val": 35.0, "accuracy/test": 36.0,
        "eval_loss/val": 1.9, "eval_loss/test": 1.8,
        "time/step_ms": 500.0, "time/epoch_s": 2.0, "time/images_per_s": 64.0}


def test_a_run_logs_its_epochs_to_tensorboard(tmp_path, monkeypatch):
    monkeypatch.delenv("MIMKD_TENSORBOARD")  # the default: on where tensorboard is installed
    pytest.importorskip("tensorboard")
    fit(tiny_recipe(epochs=2), tmp_path / "run")
    events = _events(tmp_path / "run")
    metrics = [json.loads(line) for line in RunDir(tmp_path / "run").metrics.read_text().splitlines()]
    for tag, key in (("loss/total", "loss"), ("loss/ce", "ce"), ("lr", "lr"), ("accuracy/train", "train_acc"),
                     ("accuracy/test", "test_acc")):
        assert events[tag] == [(m["epoch"], pytest.approx(m[key])) for m in metrics if key in m], tag
    assert [step for step, _ in events["time/step_ms"]] == [1, 2]


def test_a_resumed_run_logs_each_epoch_once(tmp_path, monkeypatch):
    monkeypatch.delenv("MIMKD_TENSORBOARD")
    pytest.importorskip("tensorboard")
    fit_until_interrupted(tiny_recipe(epochs=2), tmp_path / "run", after_epoch=1)
    fit(tiny_recipe(epochs=2), tmp_path / "run", resume=True)
    assert [step for step, _ in _events(tmp_path / "run")["loss/total"]] == [1, 2]


def test_without_tensorboard_a_run_writes_no_events(tmp_path, monkeypatch):
    monkeypatch.delenv("MIMKD_TENSORBOARD")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` raises ImportError
    fit(tiny_recipe(), tmp_path / "run")
    assert RunDir(tmp_path / "run").finished and not RunDir(tmp_path / "run").tensorboard.exists()


def test_mimkd_tensorboard_0_turns_it_off(tmp_path):
    fit(tiny_recipe(), tmp_path / "run")  # the suite's setting (conftest): MIMKD_TENSORBOARD=0
    assert not RunDir(tmp_path / "run").tensorboard.exists()
