"""`mimkd-edge bench` (CPU latency, throughput, accuracy of exported runs) and `mimkd-edge plot`."""

from __future__ import annotations

from pathlib import Path

import click

from ..report.plot import BATCH as PLOT_BATCH
from ..report.plot import THREADS as PLOT_THREADS
from ..runtime.bench_config import DEFAULT_SECONDS, BenchConfig
from . import main
from .options import from_options


def _csv(kind: type):
    """A comma-separated option → the tuple its library field holds (the values are checked there)."""
    def convert(_ctx, param, value: str | None):
        if value is None:
            return None
        items = [v.strip() for v in value.split(",") if v.strip()]
        try:
            return tuple(kind(v) for v in items)
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of {kind.__name__}, got {value!r}",
                                     param_hint=param.opts[0]) from None
    return convert


def _joined(values: tuple) -> str:
    """A library tuple default as the comma-separated text its option takes."""
    return ",".join(map(str, values))


@main.command()
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--cpu/--no-cpu", "cpu", default=True, show_default=True,
              help="Benchmark on the CPU: ORT's CPU execution provider, OpenVINO's CPU plugin, torch on CPU. "
                   "The only device benchmarked for now (a GPU would be ORT's CUDA provider / OpenVINO's GPU plugin).")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to merge the rows into [default: runs/bench.csv].")
@click.option("--data-dir", help="Data root or archive for the test split (beats MIMKD_DATA and data.root).")
# The rest are BenchConfig's fields, by name: their defaults are the config's (runtime/bench_config.py),
# and the config checks them. Only --ov-compute differs: interactively, bf16 too where the CPU has it.
@click.option("--backend", "backends", default=_joined(BenchConfig.backends), callback=_csv(str), show_default=True,
              help="Runtimes: torch (eager student), onnxruntime, openvino, ncnn, executorch (the last two: "
                   "where their extra is installed).")
@click.option("--precision", "precisions", default=_joined(BenchConfig.precisions), callback=_csv(str),
              show_default=True, help="Storage precisions of the artifacts to run.")
@click.option("--threads", default=_joined(BenchConfig.threads), callback=_csv(int), show_default=True,
              help="Intra-op thread counts, e.g. 1,2.")
@click.option("--batch", type=int, default=BenchConfig.batch, show_default=True,
              help="Batch size of the latency measurement.")
@click.option("--throughput-batch", type=int, default=BenchConfig.throughput_batch, show_default=True,
              help="Batch size of the throughput measurement (0: none).")
@click.option("--seconds", type=float, default=BenchConfig.seconds,
              help=f"Time budget per latency measurement [default: {DEFAULT_SECONDS:g}].")
@click.option("--iters", type=int, default=BenchConfig.iters,
              help="Timed calls per latency measurement (instead of --seconds).")
@click.option("--warmup", type=int, default=BenchConfig.warmup, show_default=True, help="Untimed calls first.")
@click.option("--shape", "shapes", default=_joined(BenchConfig.shapes), callback=_csv(str), show_default=True,
              help="Batch-1 compilations to time: static (fixed batch) and/or dynamic.")
@click.option("--ov-compute", "ov_compute", default="auto", callback=_csv(str), show_default=True,
              help="OpenVINO inference precision(s) for FP32/FP16 IRs: f32, bf16, or auto (f32, and bf16 where the "
                   "CPU computes it natively: AVX512_BF16 or AMX).")
@click.option("--accuracy/--no-accuracy", default=BenchConfig.accuracy, show_default=True,
              help="Measure the test-set accuracy of each artifact.")
def bench(runs, cpu, results, data_dir, **config_fields):
    """Measure exported RUNs on the CPU: batch-1 latency (median, mean, p90, p99, min) on static and
    dynamic compilations, throughput, test accuracy, and the FLOP bound.

    Without RUN, every run under runs/ that has an export. Writes each run's bench file and merges
    the rows into one CSV across runs.
    """
    from ..console import activity, console, plain, say
    from ..errors import UserError
    from ..rundir import DEFAULT_RESULTS, RunDir
    from ..runtime.bench import bench_runs
    from ..runtime.hardware import machine_info

    if not cpu:
        raise UserError("--no-cpu: only CPU benchmarking is implemented; drop --no-cpu")
    config = from_options(BenchConfig, **config_fields)
    results = results or DEFAULT_RESULTS
    with activity("probing the machine (CPU, ISA, clock, sgemm)"):
        machine = machine_info()
    with activity("benchmarking") as status:
        notes: list[str] = []
        rows = bench_runs(runs or None, config, results=results, machine=machine, data_dir=data_dir,
                          progress=lambda message: status.update(plain(message)), note=notes.append)
    for line in notes:
        say(line, style="yellow")
    for run in dict.fromkeys(r.run for r in rows):
        console.print(_run_table(run, [r for r in rows if r.run == run], config.batch, config.throughput_batch,
                                 compact=console.width < 120))
        for choice in _choices(run):
            say(f"{run}: deploy {choice['precision']} → {choice['why']}")
    cpu_info, est, meas = machine["cpu"], machine["peak_estimated"], machine.get("peak_measured") or {}
    console.print(f"CPU: {cpu_info['model']}, {machine['usable_cpus']} usable CPU(s), ISA {' '.join(cpu_info['isa'])}")
    console.print(f"FP32 peak per core: {est.get('gflops_per_core')} GFLOP/s estimated ({est.get('formula')}); "
                  f"{meas.get('gflops_best')} GFLOP/s measured (sgemm n={meas.get('n')}, 1 thread)")
    console.print(f"load average: {machine.get('load_average_start')} at start, "
                  f"{machine.get('load_average_end')} at end")
    written = sorted({str(RunDir(r.run).bench) for r in rows})
    say(f"wrote {', '.join(written)} and {results}")


def _choices(run: str) -> list[dict]:
    """The deployment choices the benchmark recorded for RUN (none when no artifact qualified)."""
    from ..errors import UserError
    from ..rundir.bench_results import read_deploy_choices

    try:
        return read_deploy_choices(run)
    except UserError:
        return []


_RUNTIME = {"torch": "torch", "onnxruntime": "ORT", "openvino": "OpenVINO", "ncnn": "ncnn", "executorch": "ExecuTorch"}


def _run_table(run: str, rows: list, batch: int, throughput_batch: int, *, compact: bool):
    """One run's rows; `compact` (narrow terminals) leaves out runtime (the artifact's name says it),
    mean and min (they are in the CSV), and the thread count when there is only one."""
    from rich import box
    from rich.table import Table

    from ..console import plain

    first = rows[0]
    acc = first.run_final_test_acc
    t = Table(title=plain(f"{run}: {first.student}, method {first.method}, {first.dataset}"
                          + (f" (run's final test acc {acc:.2f}%)" if acc is not None else "")),
              caption=f"batch-{batch} latency in ms per call"
                      + (f", {first.threads} thread(s)" if len({r.threads for r in rows}) == 1 else "")
                      + f"; img/s at batch {throughput_batch}; "
                      "% bound = estimated FP32 direct-convolution FLOP bound / median (Winograd can exceed 100)",
              title_justify="left", caption_justify="left",
              box=None if compact else box.HEAVY_HEAD, padding=(0, 1), pad_edge=not compact)
    columns = [("artifact", "left"), ("runtime", "left"), ("precision", "left"), ("thr", "right"),
               ("shape", "left"), ("median", "right"), ("mean", "right"), ("p90", "right"), ("p99", "right"),
               ("min", "right"), ("img/s", "right"), ("top-1 %", "right"), ("% bound", "right")]
    if compact:
        drop = {"mean", "min", "runtime"} | ({"thr"} if len({r.threads for r in rows}) == 1 else set())
        columns = [c for c in columns if c[0] not in drop]
    short = {"top-1 %": "top-1", "% bound": "%bnd"} if compact else {}
    body = []
    for r in rows:
        cells = {"artifact": r.artifact, "runtime": _RUNTIME.get(r.backend, r.backend),
                 "precision": _precision(r), "thr": str(r.threads), "shape": r.shape,
                 "median": f"{r.median_ms:.3f}", "mean": f"{r.mean_ms:.3f}", "p90": f"{r.p90_ms:.3f}",
                 "p99": f"{r.p99_ms:.3f}", "min": f"{r.min_ms:.3f}",
                 "img/s": "" if not r.throughput_ips else f"{r.throughput_ips:,.0f}",
                 "top-1 %": "" if r.accuracy is None else f"{r.accuracy:.2f}",
                 "% bound": "" if r.pct_bound_est is None else f"{r.pct_bound_est:.0f}"}
        body.append([cells[name] for name, _ in columns])
    for i, (name, justify) in enumerate(columns):
        header = short.get(name, name)
        width = max([len(header)] + [len(b[i]) for b in body])
        t.add_column(header, justify=justify, no_wrap=True, min_width=width)
    for b in body:
        t.add_row(*(plain(cell) for cell in b))
    return t


def _precision(r) -> str:
    store, infer = r.storage_precision, r.inference_precision
    return store if store == infer else f"{store}→{infer}"


@main.command()
@click.argument("runs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              help="Benchmark CSV [default: runs/bench.csv; else each RUN's own bench file].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("runs/tradeoff.png"),
              show_default=True, help="Figure path; the .svg and .md are written beside it.")
@click.option("--paper", is_flag=True, help="Add the paper's CIFAR-100 accuracies (at our latency of each student).")
@click.option("--threads", default=PLOT_THREADS, show_default=True, type=click.IntRange(min=1),
              help="Thread count to plot.")
@click.option("--batch", default=PLOT_BATCH, show_default=True, type=click.IntRange(min=1),
              help="Latency batch size to plot.")
@click.option("--title", help="Figure title [default: the data set(s), then the CPU].")
@click.option("--reference", "references", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="A committed results folder (e.g. bench/results/cpu) whose benchmarked runs are drawn faded "
                   "under ours, one point per student × method × artifact (mean over seeds). Repeatable.")
@click.option("--reference-label", "reference_labels", multiple=True,
              help="Legend caption of the --reference of the same position [default: the folder's README title "
                   "up to its first colon, else the folder's name]. Repeatable.")
def plot(runs, results, out, paper, threads, batch, title, references, reference_labels):
    """Accuracy vs batch-1 CPU latency of benchmarked RUNs (default: all rows of the results CSV),
    with the Pareto front: PNG + SVG + a Markdown table."""
    from ..console import say
    from ..report.plot import load_reference, plot_tradeoff
    from ..rundir.bench_results import load_results, read_bench_machine

    if len(reference_labels) > len(references):
        raise click.BadParameter(f"{len(reference_labels)} label(s) for {len(references)} --reference folder(s)",
                                 param_hint="--reference-label")
    refs = [load_reference(folder, label) for folder, label in
            zip(references, [*reference_labels, *[None] * (len(references) - len(reference_labels))], strict=True)]
    rows = load_results(runs or None, results)
    machine = next((m for m in map(read_bench_machine, dict.fromkeys(r.run for r in rows)) if m), None)
    paths = plot_tradeoff(rows, out, paper=paper, threads=threads, batch=batch, title=title, machine=machine,
                          references=refs)
    say(f"wrote {paths['png']}, {paths['svg']} and {paths['md']}")
