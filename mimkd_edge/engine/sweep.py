"""Sweeps: a TOML grid of recipes × overrides × seeds, run one after another, skipping finished runs.

    name = "cpu-protocol"
    out = "runs/cpu"                       # every run lands in out/<run name>

    [[stage]]                              # stages run in order: teachers first
    recipes = ["recipes/cpu/teacher.toml"]

    [[stage]]
    recipes = ["recipes/cpu/conv4_mp.toml", "recipes/cpu/conv4.toml"]
    seeds = [0, 1]
    set = ["train.epochs=5"]               # applied to every run of the stage
    [stage.grid]                           # the product of these lists; each a --set
    "method.name" = ["none", "kd", "crd", "mimkd"]

    [export]                               # optional: what `sweep --export` makes of each run
    onnx = true                            #   (default: ONNX and OpenVINO, FP32 and INT8)
    openvino = false
    int8 = true

    [bench]                                # optional: what `sweep --bench` measures
    backends = ["torch", "onnxruntime"]    #   (default: every runtime, FP32 and INT8, 1 s per measurement)
    precisions = ["fp32", "int8"]
    seconds = 0.5

    [plot]                                 # optional: committed results drawn faded under the sweep's points
    reference = ["bench/results/cpu"]

    [launcher]                             # optional: each job's resources under `sweep --launcher slurm|local`
    partition = "gpu"                      #   (flags --partition, --gpus-per-job, --time-min win)
    gpus_per_job = 1
    time_min = 240

A run is named `<recipe name>-<grid values>`, plus `-s<seed>` when the stage lists seeds (without
`seeds`, a run keeps its recipe's seed and name, so a teacher lands where students look for it).
A finished run (weights and summary written) is skipped; one with a checkpoint is resumed; so
re-running a sweep only does what is left.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from collections.abc import Callable

from ..export.plan import EXPORTERS, ExportPlan
from ..recipe import Recipe, load_recipe, read_toml, toml_value
from ..schema import ConfigError, build, param
from ..errors import UserError
from ..rundir import RunDir
from ..runtime.backends import BACKENDS
from ..runtime.bench_config import PRECISIONS
from .resume import RESUMABLE, recipe_changes


@dataclass(frozen=True)
class Stage:
    recipes: tuple[str, ...]
    seeds: tuple[int, ...] | None = param(None, ge=0, help="given: one run per seed, named -s<seed>")
    set: tuple[str, ...] = ()
    grid: dict[str, tuple[Any, ...]] | None = None


@dataclass(frozen=True)
class SweepExport:
    """What `sweep --export` makes of each finished run (a quick sweep may want less than everything)."""

    onnx: bool = True
    openvino: bool = True
    int8: bool = True
    exporter: Literal[EXPORTERS] = ExportPlan.exporter  # as `export --exporter`
    ncnn: bool = ExportPlan.ncnn  # as `export --ncnn` (the ncnn extra)
    executorch: bool = ExportPlan.executorch  # as `export --executorch` (the executorch extra)


@dataclass(frozen=True)
class SweepBench:
    """What `sweep --bench` measures: batch 1, one thread, static shapes, at these backends and precisions."""

    backends: tuple[Literal[BACKENDS], ...] = BACKENDS
    precisions: tuple[Literal[PRECISIONS], ...] = ("fp32", "int8")
    seconds: float = param(1.0, gt=0, le=3600, help="time budget of each latency measurement")


@dataclass(frozen=True)
class SweepPlot:
    """What `sweep --bench` draws under the sweep's own points: committed results folders (`plot --reference`)."""

    reference: tuple[str, ...] = ()  # folders of benchmarked runs, from the working directory
    reference_label: tuple[str, ...] = ()  # their legend captions, in order (default: each folder's README title)


@dataclass(frozen=True)
class SweepLauncher:
    """What each run's job asks for under `sweep --launcher` (submitit; engine/sweep_launch.py)."""

    partition: str | None = None  # SLURM partition (none: the cluster's default)
    gpus_per_job: int = param(0, ge=0, le=64, help="GPUs of each run's job; more than one: DDP over them")
    time_min: int = param(60, ge=1, help="time limit of each job in minutes; a run that needs longer is "
                                         "checkpointed and requeued (up to 3 times), and resumes")
    cpus_per_task: int | None = param(None, ge=1, help="CPU cores per process, and torch's threads in it "
                                                       "(none: the cluster's default, torch's own thread count)")
    mem_gb: float | None = param(None, gt=0, help="memory of each job (none: the cluster's default)")
    array_parallelism: int = param(256, ge=1, help="at most this many of a stage's jobs at once (SLURM)")
    setup: tuple[str, ...] = ()  # shell lines run before each job on SLURM (module load, source .venv/...)


def launcher_with(launcher: SweepLauncher, flags: dict[str, Any]) -> SweepLauncher:
    """The sweep file's [launcher] with the command line's values (those given) over it, checked as the
    table is: a flag cannot pass what the table would refuse."""
    table = {**dataclasses.asdict(launcher), **{k: v for k, v in flags.items() if v is not None}}
    return build(SweepLauncher, table, "launcher")


@dataclass(frozen=True)
class SweepConfig:
    name: str
    stage: tuple[Stage, ...]
    out: str = "runs"
    export: SweepExport = SweepExport()
    bench: SweepBench = SweepBench()
    plot: SweepPlot = SweepPlot()
    launcher: SweepLauncher = SweepLauncher()


@dataclass(frozen=True)
class Job:
    stage: int
    name: str
    recipe: Recipe
    out: Path
    setting: str = ""  # the grid values but method.name (the run name without recipe, method and seed)

    @property
    def finished(self) -> bool:
        return RunDir(self.out).finished

    @property
    def started(self) -> bool:
        return RunDir(self.out).checkpoint.is_file()


def load_sweep(path: str | Path) -> SweepConfig:
    raw = read_toml(path)
    try:
        cfg = build(SweepConfig, raw)
        for i, stage in enumerate(cfg.stage):
            if not stage.recipes:
                raise ConfigError(f"stage[{i}].recipes", "a non-empty list of recipe files")
        if not (cfg.export.onnx or cfg.export.openvino or cfg.export.ncnn or cfg.export.executorch):
            raise ConfigError("export", "onnx, openvino, ncnn or executorch = true (something to export)")
        if not cfg.bench.backends or not cfg.bench.precisions:
            raise ConfigError("bench", "non-empty backends and precisions")
        if len(cfg.plot.reference_label) > len(cfg.plot.reference):
            raise ConfigError("plot.reference_label", "at most one caption per plot.reference folder")
    except ConfigError as e:
        raise e.at(str(path)) from None
    return cfg


def _slug(key: str, value: Any) -> str:
    short = key.split(".")[-1]
    return str(value) if short == "name" else f"{short}{value}"


def expand(cfg: SweepConfig, base: Path = Path("."), source: str | Path = "") -> list[Job]:
    """Every run of the sweep, in order, with its fully validated recipe; `source` (the sweep file) is
    named in the error when two runs would share a name."""
    jobs: list[Job] = []
    out_root = base / cfg.out
    for i, stage in enumerate(cfg.stage):
        grid = stage.grid or {}
        keys = list(grid)
        for recipe_file in stage.recipes:
            # seed-major: a sweep stopped half-way has every grid point for its first seeds
            for seed, values in itertools.product(stage.seeds or (None,), itertools.product(*(grid[k] for k in keys))):
                overrides = [*stage.set, *(f"{k}={toml_value(v)}" for k, v in zip(keys, values, strict=True))]
                overrides += [f"seed={seed}"] if seed is not None else []
                recipe = load_recipe(base / recipe_file, overrides)
                slugs = {k: _slug(k, v) for k, v in zip(keys, values, strict=True)}
                suffix = [f"s{seed}"] if seed is not None else []
                name = "-".join([recipe.name, *slugs.values(), *suffix])
                recipe = load_recipe(base / recipe_file, [*overrides, f"name={toml_value(name)}"])
                setting = "-".join(slug for k, slug in slugs.items() if k != "method.name")
                jobs.append(Job(i, name, recipe, out_root / name, setting))
    names = [j.name for j in jobs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError("stage", f"distinct run names (these repeat: {', '.join(sorted(dupes))})", source=str(source))
    return jobs


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" (0 ≤ I < N) → (I, N); anything else is a one-line UserError."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise UserError(f"--shard: expected I/N with 0 <= I < N (e.g. 0/2), got {text!r}")
    return int(index), int(count)


def shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """The runs shard `index` of `count` trains: every count-th run of the sweep's order, from the
    index-th. Deterministic, so N processes or machines given 0/N … N−1/N cover every run exactly once;
    a stage's runs need the earlier stages finished (a student's teacher), which each shard checks as it
    reaches them."""
    return jobs[index::count]


def run_sweep(jobs: list[Job], train: Callable[[Job, bool], None],
              on_skip: Callable[[Job], None] | None = None) -> list[Job]:
    """Run every unfinished job with `train(job, resume)`; returns the jobs that ran. A finished run is
    skipped only when it ran the recipe the sweep asks for now (`check_finished_recipes`): a changed
    recipe default must not pass old runs off as new ones."""
    check_finished_recipes(jobs)
    ran = []
    for job in jobs:
        if job.finished:
            if on_skip:
                on_skip(job)
            continue
        train(job, job.started)
        ran.append(job)
    return ran


SCHEDULE_EXCUSED = tuple(k for k in RESUMABLE if k != "train.epochs")  # a run's length is part of what it measured


def check_finished_recipes(jobs: list[Job]) -> None:
    """A one-line UserError for the first finished run whose recorded recipe differs from the sweep's
    (its name, the schedule keys `--resume` may change, and keys the sweep leaves unset — None: the data
    set fills them at run time — aside): skipping, exporting or reporting it as the sweep's run would pass
    an old run off as a new one. The epoch count is not excused: a 7-epoch run is no 12-epoch run."""
    for job in jobs:
        if not job.finished:
            continue
        recorded = load_recipe(RunDir(job.out).recipe)
        keys = [c["key"] for c in recipe_changes(recorded, job.recipe, 0)
                if c["key"] != "name" and c["key"] not in SCHEDULE_EXCUSED and c["to"] is not None]
        if keys:
            raise UserError(f"{job.out}: finished with a recipe that differs from the sweep's in "
                            f"{', '.join(keys)}; move the run away (or give the difference its own grid entry) "
                            "to run the sweep's")
