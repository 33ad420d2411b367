"""`mimkd-edge teacher import`: the field's published teachers as run directories."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.group()
def teacher() -> None:
    """Teachers that are not trained here."""


@teacher.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True,
              help="Our model name (resnet32x4, wrn_40_2, vgg13, resnet50, tv_resnet50, ...).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory [default: runs/teacher-MODEL].")
@click.option("--dataset", type=click.Choice(["cifar100", "cifar10", "imagefolder"]),
              help="What the teacher was trained on, to measure it on its test split [default: cifar100 for "
                   "RepDistiller's models, an ImageNet-style image folder for torchvision's].")
@click.option("--data-dir",
              help="Where that data set is (beats MIMKD_DATA); without it the accuracy may go unmeasured.")
def import_(file, model, out, dataset, data_dir):
    """Import FILE as a run: a RepDistiller checkpoint (e.g. resnet32x4_vanilla/ckpt_epoch_240.pth) for
    our CIFAR models, or a torchvision weights file (e.g. resnet50-0676ba61.pth) for our tv_* models.

    Loaded without executing any pickle, renamed into our layout, every name and shape checked; the
    run then serves as `teacher.checkpoint` of a distillation recipe, like a teacher trained here.
    """
    from ..console import console, say, table
    from ..engine.teacher_import import import_teacher
    from ..rundir import default_run_dir

    summary = import_teacher(file, model, out, dataset=dataset, data_dir=data_dir)
    out = out or default_run_dir(summary.name)
    acc = "not measured (no data at hand: pass --data-dir)" if summary.final_test_acc is None \
        else f"{summary.final_test_acc:.2f}% (measured here)"
    console.print(table(f"imported {file}", ["key", "value"], [
        ["run", str(out)], ["model", f"{model} ({summary.student.params:,} params)"],
        ["sha256", summary.provenance["sha256"][:16] + "…"], ["test accuracy", acc]]))
    say(f"distil from it with teacher.checkpoint = \"{out}\" in the recipe (the paper recipes already do)")
