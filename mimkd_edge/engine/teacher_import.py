"""A published teacher checkpoint → a normal run directory, instead of 240 epochs of training.

    summary = import_teacher("ckpt_epoch_240.pth", "resnet32x4")      # → runs/teacher-resnet32x4/

The file is read with `torch.load(..., weights_only=True)`: tensors and plain containers only, never
code (RepDistiller's `*_last.pth`, which pickles its argparse options, is refused for that reason; its
`ckpt_epoch_240.pth` and `*_best.pth` load). Keys are renamed by models/repdistiller.py, every name
and shape is checked against our model, and the run directory gets the weights, a resolved recipe and
a summary whose `provenance` names the source file and its sha256. With the data set at hand, the
teacher's test accuracy is measured (the same evaluation as every other figure); without it, the
summary says it was not measured rather than copying the file's own claim into it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..atomic import write_text
from ..data import load_splits
from ..errors import UserError, one_line
from ..models.cost import count_macs, count_params
from ..models.registry import create_model
from ..models.repdistiller import REPDISTILLER, from_repdistiller
from ..provenance import git_commit, sha256_file, versions
from ..recipe import dump_recipe, parse_recipe
from ..rundir import RunDir, RunSummary, default_run_dir, owned
from ..rundir.checkpoint import load_state, load_weights, save_weights
from ..rundir.summary import DataInfo, StudentInfo, write_summary
from ..runtime.accuracy import evaluate
from ..runtime.session import open_session


def read_reference_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict, what the file says about itself: epoch, its own accuracy figure)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        return load_weights(path), {}
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: cannot be read as tensors only ({one_line(e)}); a RepDistiller "
                        "ckpt_epoch_*.pth or *_best.pth file is (its *_last.pth pickles options, refused)") from None
    state = raw.get("model") if isinstance(raw, dict) and isinstance(raw.get("model"), dict) else raw
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a state dict, or a checkpoint holding one under \"model\"")
    info = {}
    if isinstance(raw, dict) and state is not raw:
        for key in ("epoch", "accuracy", "best_acc"):
            value = raw.get(key)
            if isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1):
                info[key] = float(value)
    return state, info


def import_teacher(path: str | Path, model: str, out: str | Path | None = None, *, dataset: str = "cifar100",
                   data_dir: str | None = None, measure: bool = True) -> RunSummary:
    """Import a RepDistiller-layout checkpoint of `model` (our name) as a run directory (default
    runs/teacher-MODEL); its test accuracy is measured when the data set is found."""
    if model not in REPDISTILLER:
        raise UserError(f"--model: {model} has no RepDistiller counterpart; one of {', '.join(REPDISTILLER)}")
    path = Path(path)
    state, info = read_reference_checkpoint(path)
    state = from_repdistiller(model, state)
    if "fc.weight" not in state:
        raise UserError(f"{path}: no classifier weights (fc / linear / classifier): not a {model} checkpoint")
    classes = int(state["fc.weight"].shape[0])
    net = create_model(model, num_classes=classes)
    load_state(net, state, path, f"model {model} (RepDistiller layout, {classes} classes)")
    net.eval()
    name = f"teacher-{model}"
    run = RunDir(out if out is not None else default_run_dir(name))
    if run.weights.exists() or run.checkpoint.exists():
        raise UserError(f"{run.path}: already holds a run; choose another --out")
    recipe = parse_recipe({"name": name, "seed": 0, "student": {"model": model}, "method": {"name": "none"},
                           "data": {"dataset": dataset, "num_classes": classes, "channels": 3, "image_size": 32}},
                          f"{path} (imported)")
    splits, accuracy = None, None
    if measure:
        try:
            splits = load_splits(recipe.data, data_dir)
        except UserError:  # not found, or another data set (load_splits checks the class count)
            if data_dir is not None:
                raise  # asked for: say why it failed
        if splits is not None:
            accuracy = evaluate(open_session(net, "torch"), splits.test, splits.mean, splits.std).accuracy
    mean, std = (splits.mean, splits.std) if splits is not None else recipe.data.default_normalisation
    summary = RunSummary(
        name=name, method="none", seed=0,
        student=StudentInfo(model, count_params(net), count_macs(net, 32)),
        data=DataInfo(dataset, splits.source if splits is not None else "",
                      list(splits.classes) if splits is not None else [],
                      len(splits.train) if splits is not None else 0, len(splits.test) if splits is not None else 0,
                      32, list(mean) if mean else None, list(std) if std else None),
        epochs=int(info.get("epoch", 0)), final_test_acc=accuracy, final_train_acc=None, wall_seconds=0.0,
        images_per_s=0.0, device="cpu", versions=versions(), git_commit=git_commit(),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        provenance={"format": "repdistiller", "reference_model": REPDISTILLER[model][0], "source": str(path.resolve()),
                    "sha256": sha256_file(path), "file_says": info,
                    "test_accuracy": "measured here" if accuracy is not None else "not measured (no data at hand)"})
    with owned(run.path):
        save_weights(run.weights, net.state_dict(), metadata={"model": model, "imported_from": path.name})
        write_text(run.recipe, dump_recipe(recipe))
        write_summary(run.path, summary)
    return summary
