"""A finished run, loaded: its resolved recipe, its student with the trained weights, its summary."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..models.features import FeatureModel
from ..models.registry import create_model
from ..errors import UserError
from ..recipe import Recipe, load_recipe
from .checkpoint import load_model_weights
from .layout import RunDir, require_finished
from .summary import RunSummary, read_summary


@dataclass
class LoadedRun:
    path: Path
    recipe: Recipe
    model: FeatureModel  # the student, in eval mode, on the CPU
    summary: RunSummary | None  # None for a run trained before summaries existed, or being trained
    weights_sha256: str = ""  # of the bytes the model was loaded from (not of the file read again later)
    weights_size: int = 0

    @property
    def data_source(self) -> str | None:
        """Where the run's data was found when it trained (absolute), for export and bench."""
        return self.summary.data_source if self.summary else None


def load_run(path: str | Path) -> LoadedRun:
    run = RunDir(require_finished(path))
    recipe = load_recipe(run.recipe)
    model = create_model(recipe.student.model, num_classes=recipe.data.classes, in_chans=recipe.data.channels or 3)
    model.input_size = recipe.data.image_size or model.input_size  # the geometry it was trained at
    try:
        data = run.weights.read_bytes()  # read once: the hash recorded is that of the weights loaded
    except OSError as e:
        raise UserError(f"{run.weights}: unreadable weights file ({e.strerror or e})") from None
    load_model_weights(model, run.weights, f"model {recipe.student.model}", data)
    model.eval()
    summary = read_summary(run.path) if run.summary.is_file() else None
    return LoadedRun(run.path, recipe, model, summary, hashlib.sha256(data).hexdigest(), len(data))
