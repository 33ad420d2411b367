"""`mimkd-edge recipe check FILE...` and `mimkd-edge recipe init FOLDER`."""

from __future__ import annotations

from pathlib import Path

import click

from ..starter_recipe import DEFAULT_EPOCHS, DEFAULT_SPLIT_SEED, DEFAULT_TEST_FRACTION
from . import main
from .options import named_as_options


@main.group()
def recipe():
    """Write, inspect and validate recipes."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key before checking.")
@click.option("--show", is_flag=True, help="Print the resolved recipe (every default filled in).")
def check(files, overrides, show):
    """Validate recipe FILES; exit 2 at the first bad one, with one line saying what and where."""
    from ..console import console, say
    from ..recipe import dump_recipe, load_recipe

    for f in files:
        r = load_recipe(f, overrides)
        say(f"{f}: {r.student.model} ← {r.teacher.model if r.teacher else '-'} "
            f"({r.method.name}, {r.train.epochs} epochs)", "ok", "green")
        if show:
            console.print(dump_recipe(r), highlight=False, markup=False)
            unset = [k for k, v in (("data.num_classes", r.data.num_classes), ("data.channels", r.data.channels),
                                    ("data.image_size", r.data.image_size), ("data.mean", r.data.mean),
                                    ("data.std", r.data.std), ("data.crop_padding", r.data.crop_padding),
                                    ("data.flip", r.data.flip)) if v is None]
            if unset:
                source = ("the image folder (its class folders; its images' mode and size; its training split's pixels)"
                          if r.data.dataset == "imagefolder" else f"{r.data.dataset}'s published values")
                console.print(f"# not set, taken from {source} when the run starts: {', '.join(unset)}",
                              highlight=False, markup=False)


@recipe.command("init")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--student", default="conv4_mp", show_default=True, help="The model to train (`mimkd-edge models`).")
@click.option("--method", default="mimkd", show_default=True,
              help="How: mimkd, kd, crd, dkd, ... (distils from a teacher), or none (the student alone).")
@click.option("--teacher", default="resnet20", show_default=True,
              help="The teacher's model, for a method that distils (its own recipe is written too).")
@click.option("--epochs", default=DEFAULT_EPOCHS, show_default=True, type=click.IntRange(min=1),
              help="Epochs of each run (the default: a small data set on a CPU).")
@click.option("--test-fraction", default=DEFAULT_TEST_FRACTION, show_default=True, type=float,
              help="A folder of class folders (no train/ and test/): the share of each class held out for test.")
@click.option("--split-seed", default=DEFAULT_SPLIT_SEED, show_default=True, type=int,
              help="Which images --test-fraction holds out.")
@click.option("--image-size", type=int, help="Resize every image to this side (needed for mixed sizes).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the recipes [default: recipes/<the folder's name>].")
@click.option("--force", is_flag=True, help="Replace recipes already there.")
def init(folder, student, method, teacher, epochs, test_fraction, split_seed, image_size, out, force):
    """Write complete, commented recipes for your own image FOLDER (train/<class>/ and test/<class>/, or
    one folder per class, split by --test-fraction; or an archive of either): classes, geometry and
    mean/std measured and filled in; the teacher's recipe too when METHOD distils from one."""
    from ..atomic import write_text
    from ..console import say
    from ..errors import UserError
    from ..methods.registry import list_methods, method_class
    from ..models.registry import is_model
    from ..data.folder import data_name
    from ..starter_recipe import check_models_take, inspect_folder, starter_recipes

    if method not in list_methods():
        raise UserError(f"--method: expected one of {', '.join(list_methods())}, got {method!r}")
    models = {"student": student, **({"teacher": teacher} if method_class(method).needs_teacher else {})}
    for key, name in models.items():
        if not is_model(name):
            raise UserError(f"--{key}: {name!r} is not a model of `mimkd-edge models`")
    out = out or Path("recipes") / data_name(folder)
    with named_as_options():  # the library checks the three settings first, in its recipe's terms
        facts = inspect_folder(folder, image_size=image_size, test_fraction=test_fraction, split_seed=split_seed)
    check_models_take(facts, models)
    files = starter_recipes(facts, student=student, method=method, teacher=teacher, epochs=epochs, out_dir=out)
    existing = [str(path) for path, _ in files if path.exists()]
    if existing and not force:
        raise UserError(f"{existing[0]}: already exists; pass --force to replace it, or choose another --out")
    c, h, w = facts.native
    split = (f"split {1 - facts.test_fraction:.0%} / {facts.test_fraction:.0%} by seed {facts.split_seed}"
             if facts.test_fraction else "its own train/ and test/")
    say(f"{facts.root}: {len(facts.classes)} classes, {facts.train_images:,} train / {facts.test_images:,} test "
        f"images ({split}), {'gray' if c == 1 else 'colour'} {h}×{w} → read at {facts.channels}×{facts.image_size}"
        f"×{facts.image_size}, mean {list(facts.mean)} std {list(facts.std)}")
    for note in facts.notes:
        say(f"data: {note}", "note:", "yellow")
    out.mkdir(parents=True, exist_ok=True)
    for path, text in files:
        write_text(path, text)
        say(str(path), "wrote", "green")
    verbs = ["train"] + (["distill"] if len(files) > 1 else [])
    say("next: " + " && ".join(f"mimkd-edge {v} {p}" for v, (p, _) in zip(verbs, files, strict=True)))
