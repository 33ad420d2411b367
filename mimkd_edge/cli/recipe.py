"""`mimkd-edge recipe check FILE...`."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.group()
def recipe():
    """Inspect and validate recipes."""


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
                                    ("data.std", r.data.std)) if v is None]
            if unset:
                source = ("the image folder (its class folders; its images' mode and size; its training split's pixels)"
                          if r.data.dataset == "imagefolder" else f"{r.data.dataset}'s published values")
                console.print(f"# not set, taken from {source} when the run starts: {', '.join(unset)}",
                              highlight=False, markup=False)
