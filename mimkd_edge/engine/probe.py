"""How well a student's representation transfers (the paper's §4.4, Table 3): a linear classifier on
its frozen pre-classifier features of another data set.

    result = probe_run("runs/cpu/cpu-conv4_mp-mimkd-s0", DataConfig(dataset="imagefolder"), data_dir="shapes/")

Protocol: the probe data is read at the student's own geometry (its channels and image size: gray
images become RGB for an RGB student, every image resized as training resizes) and normalised with
the student's training statistics, as the student saw its own data; no augmentation. The student runs
in eval mode and its `vector` (after global pooling, before the classifier) is the feature. The
linear classifier is multinomial logistic regression on standardised features, fitted full-batch by
L-BFGS (the problem is convex: the solution does not depend on initialisation or data order, so the
probe is deterministic, and it needs no dependency beyond torch). Its L2 weight is chosen from
WEIGHT_DECAYS on a held-out tenth of the probe's training split, then refitted on the whole split;
the test split is used once, for the figure reported.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..data import ImageSet, load_splits
from ..recipe import DataConfig
from ..rundir import load_run
from ..rundir.probe_results import ProbeResult, write_probe_result
from ..runtime.accuracy import EVAL_BATCH, model_inputs

WEIGHT_DECAYS = (1e-5, 1e-4, 1e-3, 1e-2)
MAX_ITER = 300
HOLDOUT = 0.1

Progress = Callable[[str], None]


@torch.no_grad()
def extract_features(model: torch.nn.Module, data: ImageSet, mean, std, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """(N, D) float32 pre-classifier features of `data`, in order, the model in eval mode."""
    model.eval()
    chunks = []
    for start in range(0, len(data), batch_size):
        images = data.take(slice(start, start + batch_size))
        x = torch.from_numpy(model_inputs(images, mean, std, baked=False))
        chunks.append(model.forward_features(x).vector.float())
    return torch.cat(chunks)


def _fit(x: torch.Tensor, y: torch.Tensor, classes: int, weight_decay: float) -> torch.nn.Linear:
    """Multinomial logistic regression, full batch, L-BFGS with a strong-Wolfe line search."""
    linear = torch.nn.Linear(x.shape[1], classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=MAX_ITER, history_size=20,
                            tolerance_grad=1e-7, tolerance_change=1e-10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(x), y) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return linear


def _accuracy(linear: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return 100.0 * float((linear(x).argmax(1) == y).float().mean())


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 classes: int) -> dict:
    """Fit the probe (weight decay chosen on a held-out tenth of train); train and test accuracy."""
    mu, sigma = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mu) / sigma, (test_x - mu) / sigma
    held = torch.arange(len(train_y)) % round(1 / HOLDOUT) == 0  # every tenth image: all classes in it
    scores = {wd: _accuracy(_fit(train_x[~held], train_y[~held], classes, wd), train_x[held], train_y[held])
              for wd in WEIGHT_DECAYS}
    best = max(WEIGHT_DECAYS, key=lambda wd: (scores[wd], wd))  # ties: the stronger regularisation
    linear = _fit(train_x, train_y, classes, best)
    return {"weight_decay": best, "holdout_accuracy": scores,
            "train_accuracy": _accuracy(linear, train_x, train_y), "test_accuracy": _accuracy(linear, test_x, test_y)}


def probe_data_config(data: DataConfig, student: DataConfig) -> DataConfig:
    """The probe data read at the student's geometry and normalised with its training statistics."""
    return dataclasses.replace(data, channels=student.channels or 3, image_size=student.image_size or 32,
                               mean=student.mean, std=student.std, augment=False)


def probe_run(run: str | Path, data: DataConfig, *, data_dir: str | None = None, threads: int | None = None,
              progress: Progress | None = None, warn: Progress | None = None) -> ProbeResult:
    """Probe one finished run on `data`; the result is also stored in the run directory. `warn` hears each
    conversion reading the probe data makes (a resize to the student's size, gray read as RGB)."""
    say = progress or (lambda message: None)
    loaded = load_run(run)
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        cfg = probe_data_config(data, loaded.recipe.data)
        say(f"{loaded.path.name}: reading the probe data at {cfg.channels}×{cfg.image_size}×{cfg.image_size}")
        splits = load_splits(cfg, data_dir)
        for note in splits.notes:
            (warn or say)(f"probe data: {note}")
        say(f"{loaded.path.name}: features of {len(splits.train):,} + {len(splits.test):,} images")
        feats = [extract_features(loaded.model, s, splits.mean, splits.std) for s in (splits.train, splits.test)]
        say(f"{loaded.path.name}: fitting the linear probe "
            f"({len(splits.classes)} classes, {feats[0].shape[1]} features)")
        fitted = linear_probe(feats[0], splits.train.labels, feats[1], splits.test.labels, len(splits.classes))
    finally:
        torch.set_num_threads(previous)
    summary = loaded.summary
    result = ProbeResult(
        run=str(loaded.path), student=loaded.recipe.student.model, method=loaded.recipe.method.name,
        seed=loaded.recipe.seed, run_test_accuracy=summary.final_test_acc if summary else None,
        dataset=cfg.dataset, source=str(splits.source), classes=len(splits.classes),
        train_images=len(splits.train), test_images=len(splits.test), feature_dim=int(feats[0].shape[1]),
        geometry=[cfg.channels, cfg.image_size, cfg.image_size], source_geometry=list(splits.native),
        seconds=round(time.perf_counter() - started, 2),
        **fitted)
    write_probe_result(loaded.path, result)
    return result
