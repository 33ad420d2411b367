"""A published teacher checkpoint → a normal run directory, instead of 240 epochs of training: the
field's CIFAR teachers (RepDistiller's files) and torchvision's ImageNet weights (its .pth files, as
the torch hub cache holds them, for our tv_* models).

    summary = import_teacher("ckpt_epoch_240.pth", "resnet32x4")      # → runs/teacher-resnet32x4/

The file is read with `torch.load(..., weights_only=True)`: tensors and plain containers only, never
code (RepDistiller's `*_last.pth`, which pickles its argparse options, is refused for that reason; its
`ckpt_epoch_240.pth` and `*_best.pth` load). Keys are renamed by models/repdistiller.py, every name
and shape is checked against our model, and the run directory gets the weights, a resolved recipe and
a summary whose `provenance` names the source file and its sha256; a tensor holding NaN or infinity is
refused, by name. With the data set at hand, the teacher's test accuracy is measured (the same
evaluation as every other figure); without it, the summary says it was not measured rather than
copying the file's own claim into it.
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
from ..rundir.finite import require_finite
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


IMAGENET_NORMALISATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's weights were trained so


def source_layout(model: str) -> str:
    """Whose checkpoints `model` takes: RepDistiller's CIFAR models, or torchvision's (our tv_* models
    keep torchvision's parameter names under `body.`)."""
    if model in REPDISTILLER:
        return "repdistiller"
    if model.startswith("tv_"):
        return "torchvision"
    raise UserError(f"--model: {model} has no published counterpart to import; RepDistiller's: "
                    f"{', '.join(REPDISTILLER)}; torchvision's: the tv_* models")


def _renamed(model: str, layout: str, state: dict) -> dict:
    if layout == "repdistiller":
        return from_repdistiller(model, state)
    return {"body." + k.removeprefix("module."): v for k, v in state.items()}


def _class_count(state: dict, path: Path) -> int:
    """Rows of the classifier: the last 2-D weight (every model here ends with its Linear)."""
    weights = [v for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if not weights:
        raise UserError(f"{path}: no classifier weights (a Linear layer): not a classifier checkpoint")
    return int(weights[-1].shape[0])


def import_teacher(path: str | Path, model: str, out: str | Path | None = None, *, dataset: str | None = None,
                   data_dir: str | None = None, measure: bool = True) -> RunSummary:
    """Import a RepDistiller (CIFAR models) or torchvision (tv_* models) checkpoint of `model` (our
    name) as a run directory (default runs/teacher-MODEL); its test accuracy is measured when the data
    set is found (default data set: CIFAR-100, or an ImageNet-style image folder for torchvision)."""
    layout = source_layout(model)
    path = Path(path)
    state, info = read_reference_checkpoint(path)
    require_finite(state, path)  # named as in the file
    state = _renamed(model, layout, state)
    classes = _class_count(state, path)
    net = create_model(model, num_classes=classes)
    load_state(net, state, path, f"model {model} ({layout} layout, {classes} classes)")
    net.eval()
    name = f"teacher-{model}"
    run = RunDir(out if out is not None else default_run_dir(name))
    if run.weights.exists() or run.checkpoint.exists():
        raise UserError(f"{run.path}: already holds a run; choose another --out")
    data = {"dataset": dataset or ("cifar100" if layout == "repdistiller" else "imagefolder"),
            "num_classes": classes, "channels": 3, "image_size": net.input_size}
    if data["dataset"] == "imagefolder":
        data["mean"], data["std"] = IMAGENET_NORMALISATION
    recipe = parse_recipe({"name": name, "seed": 0, "student": {"model": model}, "method": {"name": "none"},
                           "data": data}, f"{path} (imported)")
    dataset = recipe.data.dataset
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
        student=StudentInfo(model, count_params(net), count_macs(net, net.input_size)),
        data=DataInfo(dataset, splits.source if splits is not None else "",
                      list(splits.classes) if splits is not None else [],
                      len(splits.train) if splits is not None else 0, len(splits.test) if splits is not None else 0,
                      net.input_size, list(mean) if mean else None, list(std) if std else None),
        epochs=int(info.get("epoch", 0)), final_test_acc=accuracy, final_train_acc=None, wall_seconds=0.0,
        images_per_s=0.0, device="cpu", versions=versions(), git_commit=git_commit(),
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        provenance={"format": layout, "reference_model": REPDISTILLER[model][0] if layout == "repdistiller" else
                    model.removeprefix("tv_"), "source": str(path.resolve()),
                    "sha256": sha256_file(path), "file_says": info,
                    "test_accuracy": "measured here" if accuracy is not None else "not measured (no data at hand)"})
    with owned(run.path):
        save_weights(run.weights, net.state_dict(), metadata={"model": model, "imported_from": path.name})
        write_text(run.recipe, dump_recipe(recipe))
        write_summary(run.path, summary)
    return summary
