"""A finished run, loaded: its resolved recipe, its student with the trained weights, its summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models.features import FeatureModel
from ..models.registry import create_model
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

    @property
    def data_source(self) -> str | None:
        """Where the run's data was found when it trained (absolute), for export and bench."""
        return self.summary.data_source if self.summary else None


def load_run(path: str | Path) -> LoadedRun:
    run = RunDir(require_finished(path))
    recipe = load_recipe(run.recipe)
    model = create_model(recipe.student.model, num_classes=recipe.data.classes, in_chans=recipe.data.channels or 3)
    model.input_size = recipe.data.image_size or model.input_size  # the geometry it was trained at
    load_model_weights(model, run.weights, f"model {recipe.student.model}")
    model.eval()
    summary = read_summary(run.path) if run.summary.is_file() else None
    return LoadedRun(run.path, recipe, model, summary)
