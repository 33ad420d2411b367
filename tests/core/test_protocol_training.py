"""What the decisive protocol needs of training: a validation split held out of the training images,
a cosine schedule that ends at 0 and survives resume, and the commit/CPU/data of every session."""

import math

import numpy as np
import pytest
import torch
from helpers import fit_until_interrupted, tiny_recipe, write_image_folder

from mimkd_edge.data import load_splits
from mimkd_edge.data.datasets import holdout_indices
from mimkd_edge.engine.schedule import cosine_factor
from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import UserError
from mimkd_edge.recipe import parse_recipe
from mimkd_edge.rundir import RunDir, read_summary
from mimkd_edge.rundir.checkpoint import load_weights
from mimkd_edge.rundir.summary import read_metrics
from mimkd_edge.schema import ConfigError


def test_holdout_is_stratified_seeded_and_the_same_every_time():
    labels = np.repeat(np.arange(4), [30, 30, 20, 20])  # 100 images, classes of 30/30/20/20
    held = holdout_indices(labels, 10)
    assert len(held) == 10 and len(set(held.tolist())) == 10
    assert np.bincount(labels[held], minlength=4).tolist() == [3, 3, 2, 2]
    assert np.array_equal(held, holdout_indices(labels, 10))


def test_holdout_rounding_gives_exactly_the_size_asked():
    labels = np.repeat(np.arange(3), [7, 7, 7])
    counts = np.bincount(labels[holdout_indices(labels, 5)], minlength=3)
    assert counts.sum() == 5 and counts.max() - counts.min() <= 1


def test_validation_images_leave_the_training_split(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, train=10, test=4)
    recipe = tiny_recipe(data={"dataset": "imagefolder", "root": str(root), "val_split": 6})
    splits = load_splits(recipe.data)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 12)
    assert np.bincount(splits.val.labels.numpy()).tolist() == [2, 2, 2]
    train_pixels = {bytes(x.numpy()) for x in splits.train.images}
    assert not any(bytes(x.numpy()) in train_pixels for x in splits.val.images)


def test_validation_split_larger_than_the_training_split_is_one_line(tmp_path):
    recipe = tiny_recipe(data={"dataset": "synthetic", "num_classes": 4, "synthetic_train": 20, "val_split": 20})
    with pytest.raises(UserError, match="data.val_split: 20 images asked for.*20 training images"):
        load_splits(recipe.data)


def test_run_reports_validation_accuracy(tmp_path):
    data = {"dataset": "synthetic", "num_classes": 4, "synthetic_train": 96, "synthetic_test": 48, "val_split": 16}
    summary = fit(tiny_recipe(data=data), tmp_path / "run")
    assert summary.val_size == 16 and summary.data.train_size == 80
    assert summary.final_val_acc is not None and 0 <= summary.final_val_acc <= 100
    assert read_summary(tmp_path / "run").final_val_acc == summary.final_val_acc


def test_cosine_factor_warms_up_then_anneals_to_zero():
    assert cosine_factor(0, 100, 10) == pytest.approx(0.1)
    assert cosine_factor(9, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(10, 100, 10) == pytest.approx(1.0)
    assert cosine_factor(55, 100, 10) == pytest.approx(0.5)  # half-way through the 90 annealed steps
    assert cosine_factor(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(50, 100, 0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def _cosine(epochs=3, **train):
    return tiny_recipe(epochs=epochs, train={"epochs": epochs, "batch_size": 32, "lr": 0.1, "schedule": "cosine",
                                             **train})


def test_cosine_run_steps_the_rate_every_step_and_ends_near_zero(tmp_path):
    fit(_cosine(), tmp_path / "run")
    lrs = [h.lr for h in read_metrics(tmp_path / "run")]
    steps = 3  # 96 images / 32
    expected = [0.1 * cosine_factor(e * steps, 3 * steps, 0) for e in range(3)]  # the rate each epoch starts at
    assert lrs == pytest.approx(expected)


def test_cosine_run_resumes_to_the_same_weights(tmp_path):
    recipe = _cosine(warmup_epochs=1)
    fit(recipe, tmp_path / "straight")
    fit_until_interrupted(recipe, tmp_path / "resumed")
    fit(recipe, tmp_path / "resumed", resume=True)
    a, b = (load_weights(RunDir(tmp_path / d).weights) for d in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_warmup_must_be_shorter_than_the_schedule():
    table = {"name": "x", "student": {"model": "conv4"},
             "train": {"epochs": 2, "schedule": "cosine", "warmup_epochs": 2}}
    with pytest.raises(ConfigError, match="train.warmup_epochs: expected fewer than train.epochs"):
        parse_recipe(table, "r.toml")


def test_each_start_and_resume_records_commit_cpu_and_data(tmp_path):
    recipe = tiny_recipe(epochs=2)
    fit_until_interrupted(recipe, tmp_path / "run")
    summary = fit(recipe, tmp_path / "run", resume=True)
    assert [s["start_epoch"] for s in summary.sessions] == [0, 1]
    for session in summary.sessions:
        assert {"git_commit", "cpu", "data", "started_at", "threads"} <= set(session)
        assert session["threads"] == torch.get_num_threads()


def test_data_archive_is_identified_by_its_sha256(tmp_path):
    import hashlib
    import tarfile

    root = write_image_folder(tmp_path / "imgs", classes=3, train=4, test=2)
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="imgs")
    summary = fit(tiny_recipe(data={"dataset": "imagefolder", "root": str(archive)}), tmp_path / "run")
    assert summary.sessions[0]["data"] == {"sha256": hashlib.sha256(archive.read_bytes()).hexdigest()}


def test_training_subset_is_stratified_and_taken_after_the_validation_split(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, train=10, test=4)
    data = {"dataset": "imagefolder", "root": str(root), "val_split": 6, "train_subset": 9}
    splits = load_splits(tiny_recipe(data=data).data)
    assert (len(splits.train), len(splits.val)) == (9, 6)
    assert np.bincount(splits.train.labels.numpy()).tolist() == [3, 3, 3]
    val_pixels = {bytes(x.numpy()) for x in splits.val.images}
    assert not any(bytes(x.numpy()) in val_pixels for x in splits.train.images)
    again = load_splits(tiny_recipe(data=data).data)
    assert torch.equal(again.train.images, splits.train.images)


def _teacher_precision_losses(tmp_path, precisions):
    fit(tiny_recipe(name="t", model="conv4"), tmp_path / "t")
    teacher = {"model": "conv4", "checkpoint": str(tmp_path / "t")}
    losses = {}
    for precision in precisions:
        train = {"epochs": 1, "batch_size": 32, "lr": 0.05, "teacher_precision": precision}
        recipe = tiny_recipe(name=precision, model="conv4_mp", method="kd", teacher=teacher, train=train)
        fit(recipe, tmp_path / precision)
        losses[precision] = read_metrics(tmp_path / precision)[-1].loss
    return losses


def test_a_bf16_teacher_hands_the_method_fp32_features_near_the_fp32_ones(tmp_path):
    losses = _teacher_precision_losses(tmp_path, ("same", "bf16"))
    assert losses["same"] != losses["bf16"]  # the setting reached the teacher's forward pass ...
    assert losses["bf16"] == pytest.approx(losses["same"], rel=0.02)  # ... and changed it by rounding only


@pytest.mark.parametrize("native", [True, False])
def test_auto_teacher_precision_is_bf16_only_where_the_cpu_has_it(tmp_path, monkeypatch, native):
    monkeypatch.setattr("mimkd_edge.engine.step.torch_native_bf16", lambda: native)
    losses = _teacher_precision_losses(tmp_path, ("same", "bf16", "auto"))
    assert losses["auto"] == losses["bf16" if native else "same"]


@pytest.mark.parametrize(("precision", "native", "warned"),
                         [("bf16", False, True), ("bf16", True, False), ("auto", False, False), ("same", False, False)])
def test_a_bf16_teacher_on_a_cpu_that_emulates_bf16_is_warned_of(tmp_path, monkeypatch, precision, native, warned):
    monkeypatch.setattr("mimkd_edge.engine.step.torch_native_bf16", lambda: native)
    fit(tiny_recipe(name="t", model="conv4"), tmp_path / "t")
    teacher = {"model": "conv4", "checkpoint": str(tmp_path / "t")}
    train = {"epochs": 1, "batch_size": 32, "lr": 0.05, "teacher_precision": precision}
    events = []
    fit(tiny_recipe(name="s", model="conv4_mp", method="kd", teacher=teacher, train=train), tmp_path / "s",
        on_event=lambda kind, info: events.append((kind, info)))
    messages = [info["message"] for kind, info in events if kind == "warning"]
    assert any("without native bf16" in m for m in messages) == warned
