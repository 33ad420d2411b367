"""`mimkd-edge train` and `mimkd-edge distill`."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from . import main

_recipe_arg = click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
_options = [
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a recipe key, e.g. train.epochs=1."),
    click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                 help="Run directory (default runs/<name>)."),
    click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint."),
    click.option("--data-dir", help="Data root or archive (beats MIMKD_DATA and data.root)."),
]


def _with_options(fn):
    for opt in reversed(_options):
        fn = opt(fn)
    return _recipe_arg(fn)


def _run(recipe_path: Path, overrides, out, resume, data_dir, *, distill: bool) -> None:
    from ..console import TrainingProgress, console, table
    from ..engine.trainer import fit
    from ..methods.registry import method_class
    from ..recipe import load_recipe
    from ..rundir import default_run_dir

    recipe = load_recipe(recipe_path, overrides)
    needs_teacher = method_class(recipe.method.name).needs_teacher
    if distill and not needs_teacher:
        raise UserError(f"{recipe_path}: method.name is \"{recipe.method.name}\", which distils nothing; "
                        "use `mimkd-edge train` or set method.name (kd, mimkd, crd, ...)")
    if not distill and needs_teacher:
        raise UserError(f"{recipe_path}: method.name is \"{recipe.method.name}\"; `train` trains without a teacher "
                        "(method \"none\"): use `mimkd-edge distill` for it")
    out = out or default_run_dir(recipe.name)
    with TrainingProgress() as progress:
        summary = fit(recipe, out, resume=resume, data_dir=data_dir, on_event=progress)
    student = summary.student
    rows = [["run", str(out)], ["student", f"{student.model} ({student.params:,} params, {student.macs:,} MACs)"],
            ["method", summary.method]]
    if summary.teacher:
        rows.append(["teacher", f"{summary.teacher['model']} ({summary.teacher['checkpoint']})"])
    if summary.final_val_acc is not None:
        rows.append(["final validation acc", f"{summary.final_val_acc:.2f}% ({summary.val_size:,} images)"])
    rows += [["final test acc", f"{summary.final_test_acc:.2f}%"],
             ["best test acc (for reference)", f"{summary.best_test_acc:.2f}% at epoch {summary.best_epoch}"],
             ["wall time", f"{summary.wall_seconds:.1f} s ({summary.images_per_s:.0f} img/s)"]]
    console.print(table("summary", ["key", "value"], rows))


@main.command()
@_with_options
def train(recipe, overrides, out, resume, data_dir):
    """Train a teacher or a no-distillation baseline (cross-entropy) from RECIPE."""
    _run(recipe, overrides, out, resume, data_dir, distill=False)


@main.command()
@_with_options
def distill(recipe, overrides, out, resume, data_dir):
    """Distil the recipe's student from its teacher with the recipe's method (mimkd, kd, crd, ...)."""
    _run(recipe, overrides, out, resume, data_dir, distill=True)
