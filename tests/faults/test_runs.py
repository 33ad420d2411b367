"""A run directory: one owner at a time, a divergence never poisons the last good checkpoint, and a
resume with a changed recipe either applies and records the change or refuses it."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import fit_until_interrupted, tiny_recipe

from mimkd_edge.rundir import RunDir, owned
from mimkd_edge.rundir.checkpoint import load_checkpoint
from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import DivergedError, UserError


def _all_finite(state) -> bool:
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(_all_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(_all_finite(v) for v in state)
    return True


def _diverging(lr):
    return tiny_recipe(epochs=3, train={"epochs": 3, "batch_size": 32, "lr": lr, "milestones": [2]})


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(DivergedError) as e:
        fit(_diverging(1e30), out)
    assert "epoch 1" in str(e.value) and "No checkpoint was written" in str(e.value)
    assert not (RunDir(out).checkpoint).exists() and "\n" not in str(e.value)


def test_finite_losses_with_overflowing_weights_are_not_checkpointed(tmp_path):
    """lr 1e4: every loss stays finite for a while but BN running variances overflow; the old loop
    checkpointed them as "last good"."""
    out = tmp_path / "run"
    with pytest.raises(DivergedError) as e:
        fit(_diverging(1e4), out)
    if (RunDir(out).checkpoint).exists():
        ckpt = load_checkpoint(RunDir(out).checkpoint)
        assert _all_finite(ckpt.model) and _all_finite(ckpt.optimizer) and _all_finite(ckpt.method)
        assert f"end of epoch {ckpt.epochs_done}, every tensor finite" in str(e.value)
    else:
        assert "No checkpoint was written" in str(e.value)


def test_divergence_after_a_good_epoch_keeps_that_checkpoint_finite(tmp_path):
    out = tmp_path / "run"
    fit_until_interrupted(tiny_recipe(epochs=3), out, after_epoch=1)
    with pytest.raises(DivergedError) as e:  # the advised remedy, reversed: resume with a huge lr
        fit(_diverging(1e30), out, resume=True)
    assert "end of epoch 1, every tensor finite" in str(e.value)
    ckpt = load_checkpoint(RunDir(out).checkpoint)
    assert ckpt.epoch == 0 and _all_finite(ckpt.model) and _all_finite(ckpt.optimizer)


def test_resume_with_a_new_lr_applies_and_records_it(tmp_path):
    out = tmp_path / "run"
    fit_until_interrupted(tiny_recipe(epochs=2), out, after_epoch=1)
    summary = fit(tiny_recipe(epochs=2, train={"epochs": 2, "batch_size": 32, "lr": 0.01, "milestones": [1]}),
                  out, resume=True)
    assert summary.recipe_changes == [{"epoch": 2, "key": "train.lr", "from": 0.05, "to": 0.01}]
    ckpt = load_checkpoint(RunDir(out).checkpoint)
    assert ckpt.history[1].lr == pytest.approx(0.01 * 0.1)  # milestone 1 passed: decayed once
    assert 'lr = 0.01' in (RunDir(out).recipe).read_text()


def test_resume_with_another_model_is_refused(tmp_path):
    out = tmp_path / "run"
    fit_until_interrupted(tiny_recipe(epochs=2), out, after_epoch=1)
    with pytest.raises(UserError, match="differs in student.model"):
        fit(tiny_recipe(epochs=2, model="conv4_mp"), out, resume=True)


def test_a_second_process_cannot_train_into_an_owned_run(tmp_path):
    out = tmp_path / "run"
    with owned(out), pytest.raises(UserError, match="another process .* is training into this run directory"):
        fit(tiny_recipe(), out)
    assert not (RunDir(out).recipe).exists()  # the refused run wrote nothing


def test_a_killed_owner_does_not_leave_the_run_locked(tmp_path):
    out = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; from mimkd_edge.rundir import owned\n"
            "with owned(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {p.pid}"), owned(out):
            pass
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    deadline = time.time() + 5
    while True:
        try:
            with owned(out):
                break
        except UserError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def test_a_run_recorded_before_the_augmentation_keys_resumes_only_as_it_trained(tmp_path):
    """A checkpoint whose recipe has no data.crop_padding / data.flip was trained with a 4-pixel crop and
    flips (what every data set got then): resuming it under today's image-folder defaults (no flip) is a
    change, refused in one line, not a silent switch; asking for what it had resumes it."""
    from helpers import write_image_folder

    from mimkd_edge.rundir.checkpoint import save_checkpoint

    root = write_image_folder(tmp_path / "imgs", classes=3, train=10, test=4, size=16)
    data = {"dataset": "imagefolder", "root": str(root)}
    out = tmp_path / "run"
    fit_until_interrupted(tiny_recipe(data=data, epochs=2), out, after_epoch=1)
    ckpt = load_checkpoint(RunDir(out).checkpoint)
    lines = [line for line in ckpt.recipe.splitlines() if not line.startswith(("crop_padding", "flip"))]
    assert len(lines) == len(ckpt.recipe.splitlines()) - 2  # as the code before the keys wrote it
    save_checkpoint(RunDir(out).checkpoint, dataclasses.replace(ckpt, recipe="\n".join(lines) + "\n"))
    with pytest.raises(UserError, match="data.flip"):
        fit(tiny_recipe(data=data, epochs=2), out, resume=True)
    fit(tiny_recipe(data={**data, "crop_padding": 4, "flip": True}, epochs=2), out, resume=True)
    assert RunDir(out).finished
