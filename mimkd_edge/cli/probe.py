"""`mimkd-edge probe`: transfer of students' representations to another data set (the paper's Table 3)."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", "data_dir", required=True,
              help="The probe data: an image folder (train/<class>/, test/<class>/) or archive, or a CIFAR root.")
@click.option("--dataset", type=click.Choice(["imagefolder", "cifar10", "cifar100"]), default="imagefolder",
              show_default=True, help="What --data holds.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: torch's].")
def probe(runs, data_dir, dataset, threads):
    """Fit a linear classifier on RUNS' frozen pre-classifier features of another data set and report
    its test accuracy per run (stored in each RUN): how well each student's representation transfers.
    """
    from ..console import activity, console, plain, say, table
    from ..engine.probe import probe_run
    from ..recipe import DataConfig
    from ..report.tables import method_name, student_name

    results, said = [], set()

    def once(note: str) -> None:  # the same conversion for every run of one student geometry: said once
        if note not in said:
            said.add(note)
            say(note, "note:", "yellow")

    with activity("probing") as status:
        for run in runs:
            results.append(probe_run(run, DataConfig(dataset=dataset), data_dir=data_dir, threads=threads,
                                     progress=lambda m: status.update(plain(m)), warn=once))
    first = results[0]
    rows = [[Path(r.run).name, student_name(r.student), method_name(r.method), r.seed,
             "" if r.run_test_accuracy is None else f"{r.run_test_accuracy:.2f}", f"{r.test_accuracy:.2f}",
             f"{r.weight_decay:g}"] for r in results]
    console.print(table(f"linear probe on {first.source} ({first.classes} classes, {first.train_images:,} train / "
                        f"{first.test_images:,} test images)",
                        ["run", "student", "method", "seed", "own test acc %", "probe test acc %", "L2"], rows))
