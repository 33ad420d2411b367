"""`mimkd-edge sweep SWEEP.toml`: run a grid of recipes × overrides × seeds, skipping finished runs."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the runs and their state; train nothing.")
@click.option("--data-dir", help="Data root or archive (beats MIMKD_DATA and data.root).")
def sweep(sweep_file, dry_run, data_dir):
    """Train every run of SWEEP_FILE in order (teachers first); finished runs are skipped, started ones resumed."""
    from ..console import TrainingProgress, console, table
    from ..engine.sweep import expand, load_sweep, run_sweep
    from ..engine.trainer import fit

    jobs = expand(load_sweep(sweep_file))
    state = lambda j: "finished" if j.finished else ("started" if j.started else "to do")  # noqa: E731
    console.print(table(f"sweep {sweep_file}: {len(jobs)} runs", ["name", "stage", "method", "epochs", "state"],
                        [[j.name, j.stage, j.recipe.method.name, j.recipe.train.epochs, state(j)] for j in jobs]))
    if dry_run:
        return

    def train(job, resume):
        console.rule(f"{job.name}")
        with TrainingProgress() as progress:
            fit(job.recipe, job.out, resume=resume, data_dir=data_dir, on_event=progress)

    ran = run_sweep(jobs, train, on_skip=lambda j: console.print(f"[dim]skip {j.name} (finished)[/]"))
    console.print(f"sweep done: {len(ran)} trained, {len(jobs) - len(ran)} already finished")
