"""What a run directory holds, and how to find and reload one.

    runs/<name>/recipe.toml        the resolved recipe (every default written out)
               checkpoint.pt       model, method, optimiser, scheduler, RNG, metrics: resume point
               model.safetensors   the trained student's weights (what export and distill read)
               metrics.jsonl       one line per epoch
               summary.json        models, cost, accuracy, wall time, versions, git commit
               .lock               held (flock) by the process training into the directory
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..models.features import FeatureModel
from ..models.registry import create_model
from ..recipe import Recipe, load_recipe
from .checkpoint import load_weights

RECIPE, CHECKPOINT, WEIGHTS, METRICS, SUMMARY = "recipe.toml", "checkpoint.pt", "model.safetensors", "metrics.jsonl", "summary.json"
LOCK = ".lock"
RUNS_ROOT = Path("runs")


@contextlib.contextmanager
def owned(run: Path):
    """Hold the run directory for one process: a second `train`/`distill` into it (another terminal,
    a sweep started twice) is refused instead of writing its files beside the first's. An advisory
    flock on RUN/.lock: the kernel drops it when the owner dies, so a killed run never leaves it stuck."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    try:
        run.mkdir(parents=True, exist_ok=True)
        fd = os.open(run / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{run}: cannot create the run directory ({e.strerror or e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"{run}: another process (pid {owner}) is training into this run directory; "
                            "wait for it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def default_run_dir(recipe: Recipe) -> Path:
    return RUNS_ROOT / recipe.name


def weights_path(path: str | Path) -> Path:
    """A run directory or a .safetensors file → the weights file."""
    p = Path(path)
    return p / WEIGHTS if p.is_dir() else p


def load_model_weights(model: FeatureModel, path: str | Path, what: str) -> None:
    """Load a state dict strictly: names and shapes. A mismatch is one line naming the file and the
    first bad keys (a ResNet-8x4 given ResNet-20 weights, a 10-class head for num_classes = 5)."""
    state = load_weights(path)
    own = model.state_dict()
    problems = [f"missing {k}" for k in own if k not in state][:3]
    problems += [f"unexpected {k}" for k in state if k not in own][:3]
    problems += [f"{k} is {tuple(state[k].shape)} in the file, {tuple(v.shape)} in the model"
                 for k, v in own.items() if k in state and state[k].shape != v.shape][:3]
    if problems:
        raise UserError(f"{path}: weights do not fit {what} ({'; '.join(problems)})")
    model.load_state_dict(state)


@dataclass
class LoadedRun:
    path: Path
    recipe: Recipe
    model: FeatureModel  # the student, in eval mode, on the CPU
    summary: dict

    @property
    def data_source(self) -> str | None:
        """Where the run's data was found when it trained (absolute), for export and bench."""
        source = (self.summary.get("data") or {}).get("source")
        return source if isinstance(source, str) and source != "synthetic" else None


def load_run(path: str | Path) -> LoadedRun:
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not (run / WEIGHTS).is_file():
        raise UserError(f"{run}: no {WEIGHTS} in this run (did it finish?)")
    recipe = load_recipe(run / RECIPE)
    model = create_model(recipe.student.model, num_classes=recipe.data.classes, in_chans=recipe.data.channels or 3)
    model.input_size = recipe.data.image_size or model.input_size  # the geometry it was trained at
    load_model_weights(model, run / WEIGHTS, f"model {recipe.student.model}")
    model.eval()
    summary = read_json(run / SUMMARY) if (run / SUMMARY).is_file() else {}
    return LoadedRun(run, recipe, model, summary)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable JSON ({e})") from None


def finished_runs(root: str | Path = RUNS_ROOT) -> list[Path]:
    """Run directories at any depth under `root` (sweeps nest them) that finished — they hold
    weights and a summary —, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p.parent for p in root.rglob(SUMMARY) if (p.parent / WEIGHTS).is_file()]
    return sorted(runs, key=lambda p: (p / SUMMARY).stat().st_mtime_ns)


def latest_run(root: str | Path = RUNS_ROOT) -> Path:
    runs = finished_runs(root)
    if not runs:
        raise UserError(f"{root}: no finished run found; train or distill one first, or name RUN")
    return runs[-1]


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
