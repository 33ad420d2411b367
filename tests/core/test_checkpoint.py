"""Checkpoints: typed records written atomically; the committed ones (written before the record was typed)
still load, restore and resume."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers import fit_until_interrupted, tiny_recipe

from mimkd_edge.atomic import atomic_write
from mimkd_edge.engine.resume import checkpoint_recipe
from mimkd_edge.engine.trainer import build_training, fit
from mimkd_edge.errors import UserError
from mimkd_edge.rundir import RunDir
from mimkd_edge.rundir.checkpoint import CHECKPOINT_SCHEMA, Checkpoint, capture_rng, load_checkpoint, save_checkpoint
from mimkd_edge.rundir.summary import EpochRecord, read_metrics

ROOT = Path(__file__).resolve().parents[2]
IN_PROGRESS = ROOT / "bench" / "results" / "protocol" / "in-progress" / "protocol-teacher-wrn_40_2-s0"


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


def test_the_committed_in_progress_checkpoint_loads_as_its_run_wrote_it():
    """The protocol teacher's latest committed checkpoint (written across sessions by successive versions;
    the schema-1 form is covered by the rewrite test below): its history is its metrics file, line for
    line and byte for byte, and every session names its commit."""
    ckpt = load_checkpoint(IN_PROGRESS / "checkpoint.pt")
    lines = (IN_PROGRESS / "metrics.jsonl").read_text().splitlines()
    assert ckpt.epochs_done == ckpt.epoch + 1 == len(ckpt.history) == len(lines) >= 16
    assert ckpt.history[-1] == read_metrics(IN_PROGRESS)[-1]
    assert [json.dumps(r.to_dict()) for r in ckpt.history] == lines
    assert ckpt.sessions and all(len(s["git_commit"]) == 40 for s in ckpt.sessions) and ckpt.wall_seconds > 10_000


def test_the_committed_in_progress_checkpoint_restores_into_its_recipes_training(tmp_path):
    """What a resume of it does first: the recipe it recorded builds a training (here on a small synthetic
    set of its ten classes) that takes every state back, the student's weights and the generators."""
    ckpt = load_checkpoint(IN_PROGRESS / "checkpoint.pt")
    recipe = checkpoint_recipe(ckpt, IN_PROGRESS)
    assert (recipe.student.model, recipe.method.name, recipe.train.epochs) == ("wrn_40_2", "none", 60)
    data = dataclasses.replace(recipe.data, dataset="synthetic", root=None, num_classes=10, val_split=0,
                               synthetic_train=64, synthetic_test=32)
    s = build_training(dataclasses.replace(recipe, data=data, train=dataclasses.replace(recipe.train, device="cpu")))
    ckpt.restore(model=s.student, method=s.method, optimizer=s.optimizer, scheduler=s.scheduler, where="committed")
    assert all(torch.equal(v, ckpt.model[k]) for k, v in s.student.state_dict().items())
    assert torch.equal(torch.get_rng_state(), ckpt.rng["torch"])
    assert s.scheduler.last_epoch == ckpt.scheduler["last_epoch"]


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
