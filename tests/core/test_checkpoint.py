"""Checkpoints: typed records written atomically; those written before the record was typed (schema 1) still
load and resume; the committed protocol teacher, trained across versions, loads where its recipes point."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers import fit_until_interrupted, tiny_recipe

from mimkd_edge.atomic import atomic_write
from mimkd_edge.engine.trainer import fit, load_teacher
from mimkd_edge.errors import UserError
from mimkd_edge.recipe import load_recipe
from mimkd_edge.rundir import RunDir, read_summary
from mimkd_edge.rundir.checkpoint import CHECKPOINT_SCHEMA, Checkpoint, capture_rng, load_checkpoint, save_checkpoint
from mimkd_edge.rundir.summary import EpochRecord, read_metrics

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_TEACHER = ROOT / "bench" / "results" / "protocol" / "runs" / "protocol-teacher-wrn_40_2-s0"


def tiny_checkpoint(epoch: int = 1, size: int = 3) -> Checkpoint:
    return Checkpoint(epoch, {"w": torch.ones(size)}, {}, {}, {}, capture_rng(), [])


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, tiny_checkpoint(epoch=1))

    def crash(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a checkpo")
        raise OSError("disk full")

    with pytest.raises(UserError, match="checkpoint.pt: cannot write"):
        atomic_write(path, crash)
    assert load_checkpoint(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def test_truncated_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, tiny_checkpoint(size=1000))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="unreadable checkpoint"):
        load_checkpoint(path)


class Payload:
    """Stands for any class a tampered checkpoint could smuggle in."""


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(UserError):
        load_checkpoint(path)


def test_a_checkpoint_of_a_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({**tiny_checkpoint().to_state(), "schema": CHECKPOINT_SCHEMA + 1}, path)
    with pytest.raises(UserError, match=f"schema {CHECKPOINT_SCHEMA + 1}, written by a newer mimkd-edge"):
        load_checkpoint(path)


def test_the_committed_protocol_teacher_is_the_quick_jobs_and_loads_into_its_model(monkeypatch):
    """The protocol teacher, trained across sessions by successive versions and committed finished, is the
    teacher the README's quick job distils from: its weights load, by name and shape, into the model the
    quick recipe names; its metrics hold every epoch, and every session names its commit, CPU and data hash."""
    monkeypatch.chdir(ROOT)  # recipes name their teacher relative to the repository root
    recipe = load_recipe(ROOT / "recipes" / "quick" / "conv4_mp-mimkd.toml")
    cifar10 = dataclasses.replace(recipe.data, channels=3)  # what the data set fills in at run time
    teacher, info = load_teacher(dataclasses.replace(recipe, data=cifar10))
    assert Path(info["checkpoint"]).resolve() == PROTOCOL_TEACHER / "model.safetensors"
    summary = read_summary(PROTOCOL_TEACHER)
    assert (recipe.teacher.model, summary.student.model) == ("wrn_40_2", "wrn_40_2")
    assert info["test_acc"] == summary.final_test_acc >= 90.0
    assert len(read_metrics(PROTOCOL_TEACHER)) == summary.epochs == 60
    assert all(len(s["git_commit"].removesuffix("+dirty")) == 40 and s["cpu"] and s["data"]["sha256"]
               for s in summary.sessions)


def test_a_checkpoint_written_before_the_record_was_typed_resumes_to_the_same_run(tmp_path):
    """Schema 1 (no "schema" key, the history as plain dicts) resumes exactly as today's checkpoint does."""
    recipe = tiny_recipe(epochs=2)
    fit(recipe, tmp_path / "straight")
    out = tmp_path / "old"
    fit_until_interrupted(recipe, out, after_epoch=1)
    state = torch.load(RunDir(out).checkpoint, weights_only=True)
    assert state.pop("schema") == CHECKPOINT_SCHEMA and isinstance(state["history"][0], dict)
    torch.save(state, RunDir(out).checkpoint)
    fit(recipe, out, resume=True)
    assert (RunDir(out).weights.read_bytes() == RunDir(tmp_path / "straight").weights.read_bytes())
    assert RunDir(out).metrics.read_text().count("\n") == 2


def test_epoch_records_read_old_lines_and_refuse_what_they_cannot_read():
    line = {"epoch": 1, "lr": 0.1, "steps": 3, "ce": 1.5, "loss": 1.5, "train_acc": 30.0, "seconds": 2.0,
            "images_per_s": 48.0, "test_acc": 31.0, "test_loss": 2.0}
    r = EpochRecord.from_dict(line)
    assert (r.terms, r.loss, r.val_acc, r.evaluated) == ({"ce": 1.5, "loss": 1.5}, 1.5, None, True)
    assert json.dumps(r.to_dict()) == json.dumps(line)
    with pytest.raises(UserError, match="not an epoch record.*lr"):
        EpochRecord.from_dict({k: v for k, v in line.items() if k != "lr"}, "m.jsonl")
    with pytest.raises(UserError, match="newer mimkd-edge"):
        EpochRecord.from_dict({**line, "schema": 2})
