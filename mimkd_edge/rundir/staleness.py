"""Is an export still that of its run? An export records the sha256 of the run's recipe and weights it
was made from (rundir/manifest.py). After `train --resume` or an edited recipe it describes a model the
run no longer holds: bench, the deployment choice and `predict RUN` refuse it rather than measure or
deploy it beside the new weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import UserError
from ..provenance import sha256_file
from .layout import RunDir
from .manifest import Manifest


def recipe_sha256(run: str | Path) -> str:
    """What an export records of RUN's recipe: the sha256 of its text (UTF-8)."""
    path = RunDir(run).recipe
    try:
        return hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: unreadable recipe ({e})") from None


def stale_reason(run: str | Path, manifest: Manifest, weights_sha256: str | None = None) -> str | None:
    """Why `manifest` is not an export of RUN as it is now (None when it is). `weights_sha256`: the hash of
    the weights the caller loaded, else the weights file is hashed here. A manifest from before weights
    were recorded is judged by its recipe alone."""
    run = RunDir(run)
    recorded_recipe, recorded_weights = manifest.recipe.get("sha256"), manifest.weights.get("sha256")
    if not recorded_recipe and not recorded_weights:
        return "it records neither the recipe nor the weights it was exported from"
    if recorded_weights:
        now = weights_sha256 or _hash(run.weights)
        if now != recorded_weights:
            return f"it was exported from other weights than {run.weights.name} holds now (trained on since?)"
    if recorded_recipe and recorded_recipe != recipe_sha256(run.path):
        return f"it was exported with another {run.recipe.name} than the run holds now"
    return None


def require_current(run: str | Path, manifest: Manifest, weights_sha256: str | None = None) -> None:
    """One UserError saying to re-export when `manifest` is stale for RUN (see `stale_reason`)."""
    reason = stale_reason(run, manifest, weights_sha256)
    if reason is not None:
        raise UserError(f"{RunDir(run).export}: stale export: {reason}; re-export it with "
                        f"`mimkd-edge export {RunDir(run).path}`")


def _hash(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as e:
        raise UserError(f"{path}: unreadable weights file ({e.strerror or e})") from None
