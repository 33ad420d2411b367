"""`mimkd-edge sweep SWEEP.toml`: run a grid of recipes × overrides × seeds, skipping finished runs;
optionally export and benchmark every run and draw the results table and trade-off figure."""

from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.command()
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the runs and their state; train nothing.")
@click.option("--data-dir", help="Data root or archive (beats MIMKD_DATA and data.root).")
@click.option("--export", "do_export", is_flag=True, help="Export each finished run unless it already has an export "
              "(what the sweep file's [export] table asks; default ONNX + OpenVINO, FP32 + INT8).")
@click.option("--no-train", is_flag=True, help="Train nothing: only export/benchmark/report the finished runs.")
@click.option("--bench", "do_bench", is_flag=True, help="Benchmark every exported run not yet benchmarked (as the "
              "sweep file's [bench] table asks; default every backend, FP32 + INT8, 1 s each), then "
              "write OUT/results.md (accuracy over seeds, latency) and OUT/tradeoff.png/.svg/.md.")
@click.option("--shard", "shard_of", metavar="I/N", help="Train only shard I of N (every N-th run from the I-th): "
              "N processes or machines given 0/N .. N-1/N share the sweep, each run trained once.")
@click.option("--launcher", type=click.Choice(["slurm", "local"]), help="Train through submitit: each stage's runs "
              "as one job array, after the stages before it (slurm: queued with dependencies, the command returns; "
              "local: the same jobs as processes on this machine, waited for). Needs the cluster extra.")
@click.option("--partition", help="SLURM partition of the jobs (beats the sweep file's [launcher] partition).")
@click.option("--gpus-per-job", type=int, help="GPUs of each run's job; more than one: DDP "
              "over them (beats [launcher] gpus_per_job; default 0).")
@click.option("--time-min", type=int, help="Time limit of each job in minutes; a longer run is "
              "checkpointed, requeued and resumed (beats [launcher] time_min; default 60).")
def sweep(sweep_file, dry_run, data_dir, do_export, no_train, do_bench, shard_of, launcher, partition, gpus_per_job,
          time_min):
    """Train every run of SWEEP_FILE in order (teachers first); finished runs are skipped, started ones resumed."""
    from ..console import TrainingProgress, console, plain, say, table
    from ..engine.sweep import (check_finished_recipes, expand, launcher_with, load_sweep, parse_shard, run_sweep,
                                shard)
    from ..engine.trainer import fit

    cfg = load_sweep(sweep_file)
    jobs = expand(cfg, source=sweep_file)
    if launcher and not (dry_run or no_train):
        _check_launcher(launcher, do_export or do_bench)
        resources = launcher_with(cfg.launcher, {"partition": partition, "gpus_per_job": gpus_per_job,
                                                 "time_min": time_min})
    if shard_of:
        jobs = shard(jobs, *parse_shard(shard_of))
    state = lambda j: "finished" if j.finished else ("started" if j.started else "to do")  # noqa: E731
    console.print(table(f"sweep {sweep_file}: {len(jobs)} runs", ["name", "stage", "method", "epochs", "state"],
                        [[j.name, j.stage, j.recipe.method.name, j.recipe.train.epochs, state(j)] for j in jobs]))
    if dry_run:
        return

    def train(job, resume):
        console.rule(plain(job.name))
        with TrainingProgress() as progress:
            fit(job.recipe, job.out, resume=resume, data_dir=data_dir, on_event=progress)

    if launcher and not no_train:
        if not _launch(jobs, cfg, launcher, resources, data_dir):
            return  # queued on SLURM
    elif no_train:
        check_finished_recipes(jobs)
    else:
        ran = run_sweep(jobs, train, on_skip=lambda j: say(f"skip {j.name} (finished)", style="dim"))
        console.print(f"sweep done: {len(ran)} trained, {len(jobs) - len(ran)} already finished")
    jobs = [j for j in jobs if j.finished]
    failed = _export_all(jobs, cfg.export, data_dir) if do_export else 0
    if do_bench:
        _bench_and_report(jobs, cfg, data_dir)
    if failed:
        from ..console import error_line
        from ..export import EXIT_INCOMPLETE

        error_line(f"{failed} exported artifact(s) failed their check and were not published (lines above)")
        click.get_current_context().exit(EXIT_INCOMPLETE)


def _check_launcher(launcher, then_export) -> None:
    """Before anything is printed: the launcher can run here, and nothing is asked of runs it only queues."""
    from ..engine.sweep_launch import require_launcher
    from ..errors import UserError

    if launcher == "slurm" and then_export:
        raise UserError("--export/--bench with --launcher slurm: the runs train later; once their jobs are done, "
                        "run the same sweep with --no-train --export --bench")
    require_launcher(launcher)


def _launch(jobs, cfg, launcher, resources, data_dir) -> bool:
    """Train the unfinished runs through submitit; True when they are done (local), False when queued (SLURM)."""
    from ..console import activity, console, say
    from ..engine.sweep_launch import launch_sweep

    with activity("submitting" if launcher == "slurm" else f"{launcher} launcher: running the sweep's jobs"):
        stages, logs = launch_sweep(jobs, launcher, resources, Path(cfg.out), cfg.name, data_dir)
    for submitted in stages:
        say(f"submitted {len(submitted)} run(s): job(s) {', '.join(j.job_id for j in submitted)}")
    trained = sum(map(len, stages))
    if launcher == "slurm":
        say(f"queued; logs in {logs}. When the jobs are done, the same sweep with --no-train --export --bench "
            "exports, measures and reports the runs")
        return False
    console.print(f"sweep done: {trained} trained by the {launcher} launcher, {len(jobs) - trained} already finished")
    return True


def _export_all(jobs, plan, data_dir) -> int:
    """Export every finished run not yet exported; a failed artifact is reported and the sweep goes
    on with what passed. Returns the number of failed artifacts."""
    from ..console import activity, error_line, plain, say
    from ..export import ExportPlan, export_run
    from ..rundir import RunDir

    failed = 0
    for job in jobs:
        if RunDir(job.out).exported:
            say(f"skip export of {job.name} (exported)", style="dim")
            continue
        with activity(plain(f"exporting {job.name}")) as status:
            result = export_run(job.out, ExportPlan(onnx=plan.onnx, openvino=plan.openvino, int8=plan.int8,
                                                    exporter=plan.exporter, ncnn=plan.ncnn,
                                                    executorch=plan.executorch), data_dir=data_dir,
                                progress=lambda message, name=job.name: status.update(plain(f"{name}: {message}")))
        for failure in result.failures:
            error_line(f"{job.name}: {failure.line()}")
        failed += len(result.failures)
        published = len(result.manifest.artifacts) if result.manifest else 0
        say(f"exported {job.name}: {published} artifact(s) published")
    return failed


def _bench_and_report(jobs, cfg, data_dir) -> None:
    from ..atomic import write_text
    from ..console import activity, plain, say
    from ..report.plot import load_reference, plot_tradeoff
    from ..report.protocol import arm_rows, protocol_markdown, protocol_rows
    from ..rundir import DEFAULT_RESULTS, RunDir
    from ..rundir.layout import RESULTS_MARKDOWN, TRADEOFF_FIGURE
    from ..runtime.bench import BenchConfig, bench_runs

    out, measure = Path(cfg.out), cfg.bench
    labels = [*cfg.plot.reference_label, *[None] * (len(cfg.plot.reference) - len(cfg.plot.reference_label))]
    references = [load_reference(folder, label) for folder, label in zip(cfg.plot.reference, labels, strict=True)]
    results = out / DEFAULT_RESULTS.name
    todo = [j.out for j in jobs if RunDir(j.out).exported and not RunDir(j.out).benched]
    if todo:
        config = BenchConfig(backends=measure.backends, precisions=measure.precisions, threads=(1,),
                             shapes=("static",), seconds=measure.seconds)
        with activity("benchmarking") as status:
            bench_runs(todo, config, results=results, data_dir=data_dir, progress=lambda m: status.update(plain(m)))
    benched = [j.out for j in jobs if RunDir(j.out).benched]
    finished = [j.out for j in jobs if j.finished]
    table = out / RESULTS_MARKDOWN
    setting = {j.out: j.setting for j in jobs}  # grid values: runs of one method at two settings stay apart
    write_text(table, protocol_markdown(protocol_rows(finished, setting.__getitem__)))
    if benched:
        rows = arm_rows(benched)  # each run's bench file, MIMKD labelled by critic width
        paths = plot_tradeoff(rows, out / TRADEOFF_FIGURE, paper=True, references=references)
        say(f"wrote {table}, {paths['png']}, {paths['svg']}")
    else:
        say(f"wrote {table} (no benchmarked run to plot)")
