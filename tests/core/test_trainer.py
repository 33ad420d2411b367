"""The training loop: resume equivalence, divergence handling, refusing to overwrite a run."""

import dataclasses
import json

import pytest
import torch
from helpers import fit_until_interrupted, tiny_recipe

from mimkd_edge.rundir import RunDir, load_run
from mimkd_edge.provenance import cpu_name
from mimkd_edge.rundir.checkpoint import load_checkpoint, load_weights
from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import DivergedError, UserError
from mimkd_edge.methods import kd as kd_module


def _metrics(path):
    lines = [json.loads(line) for line in (RunDir(path).metrics).read_text().splitlines()]
    for line in lines:  # timings differ between runs; everything else must not
        line.pop("seconds"), line.pop("images_per_s")
    return lines


def test_resume_gives_the_same_weights_and_metrics(tmp_path):
    recipe = tiny_recipe(epochs=3)
    fit(recipe, tmp_path / "straight")
    fit_until_interrupted(recipe, tmp_path / "resumed")
    assert load_checkpoint(RunDir(tmp_path / "resumed").checkpoint).epoch == 0
    assert not (RunDir(tmp_path / "resumed").weights).exists()
    fit(recipe, tmp_path / "resumed", resume=True)

    a = load_weights(RunDir(tmp_path / "straight").weights)
    b = load_weights(RunDir(tmp_path / "resumed").weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _metrics(tmp_path / "straight") == _metrics(tmp_path / "resumed")


def test_existing_run_is_not_overwritten_without_resume(tmp_path):
    recipe = tiny_recipe()
    fit(recipe, tmp_path / "run")
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        fit(recipe, tmp_path / "run")


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    recipe = tiny_recipe(epochs=3)
    original = kd_module.CrossEntropy.forward
    calls = {"n": 0}

    def poisoned(self, student, teacher, labels, index=None):
        out = original(self, student, teacher, labels, index)
        calls["n"] += 1
        if calls["n"] > 4:  # 3 steps per epoch: the second epoch diverges
            out.losses["ce"] = out.losses["ce"] * float("nan")
        return out

    monkeypatch.setattr(kd_module.CrossEntropy, "forward", poisoned)
    with pytest.raises(DivergedError, match="loss became nan at epoch 2, step 2"):
        fit(recipe, tmp_path / "run")
    ckpt = load_checkpoint(RunDir(tmp_path / "run").checkpoint)
    assert ckpt.epoch == 0 and all(torch.isfinite(v).all() for v in ckpt.model.values())
    assert not (RunDir(tmp_path / "run").weights).exists()


def test_same_seed_same_run(tmp_path):
    recipe = tiny_recipe()
    fit(recipe, tmp_path / "a")
    fit(recipe, tmp_path / "b")
    a, b = load_weights(RunDir(tmp_path / "a").weights), load_weights(RunDir(tmp_path / "b").weights)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_directory_contents(tmp_path):
    summary = fit(tiny_recipe(), tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    run = RunDir(tmp_path / "run")
    assert names == sorted(p.name for p in (run.recipe, run.checkpoint, run.weights, run.metrics, run.summary,
                                            run.lock))
    assert summary.student.params > 0 and summary.student.macs > 0
    assert 0 <= summary.final_test_acc <= 100 and summary.versions["torch"]
    assert summary.cpu == cpu_name() and (summary.cpu is None or "family" in summary.cpu)  # where it computed
    loaded = load_run(tmp_path / "run")
    data = dataclasses.replace(tiny_recipe().data, mean=(0.5,) * 3, std=(0.25,) * 3, image_size=32, channels=3,
                               crop_padding=4, flip=True)  # the synthetic set's augmentation, written out
    assert loaded.recipe == dataclasses.replace(tiny_recipe(), data=data) and not loaded.model.training


def test_compile_failure_falls_back_to_eager(tmp_path, monkeypatch):
    class BrokenCompiled(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self._orig_mod = module

        def forward(self, x):
            raise RuntimeError("no backend")

    monkeypatch.setattr(torch, "compile", BrokenCompiled)
    events = []
    table = tiny_recipe()
    import dataclasses

    recipe = dataclasses.replace(table, train=dataclasses.replace(table.train, compile=True))
    summary = fit(recipe, tmp_path / "run", on_event=lambda kind, info: events.append((kind, info)))
    assert summary.final_test_acc is not None
    assert any(kind == "warning" and "torch.compile failed" in info["message"] for kind, info in events)


def test_streamed_image_folder_trains_exactly_like_the_resident_one(tmp_path):
    from helpers import tiny_table, write_image_folder

    from mimkd_edge.recipe import parse_recipe

    root = write_image_folder(tmp_path / "set", classes=4, train=16, test=6, size=16)
    data = {"dataset": "imagefolder", "root": str(root), "num_classes": 4, "image_size": 16, "workers": 1}
    runs = {}
    for path, budget in (("resident", 4.0), ("streamed", 0.0)):
        recipe = parse_recipe(tiny_table(epochs=2, data={**data, "resident_max_gb": budget}), "test")
        fit(recipe, tmp_path / path)
        summary = json.loads((RunDir(tmp_path / path).summary).read_text())
        assert summary["data"]["path"] == {"train": path, "test": path}
        runs[path] = (_metrics(tmp_path / path), load_weights(RunDir(tmp_path / path).weights))
    assert runs["resident"][0] == runs["streamed"][0]
    for name, w in runs["resident"][1].items():
        assert torch.equal(w, runs["streamed"][1][name]), name
