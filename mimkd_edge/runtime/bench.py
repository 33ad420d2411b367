"""CPU benchmark of finished, exported runs: latency, throughput, accuracy, and the FLOP bound.

    rows = bench_runs(["runs/c4mp"], BenchConfig(threads=(1, 2)), results="runs/bench.csv")

For every run × artifact × backend × thread count (artifacts: runtime/artifacts.py, from the run's
manifest, verified first — every listed file re-hashed; a changed file stops the bench with one
line naming it):

- batch-1 latency (median, mean, p90, p99, min of per-call times) on a **static** batch-1
  compilation (ORT's free dimension fixed; OpenVINO reshaped) and on the **dynamic** one (any batch);
  the PyTorch eager student has no static compilation: its rows say shape "eager";
- throughput (images/s) at a larger batch on the dynamic session;
- test-set top-1 of the artifact on that backend (runtime.accuracy.evaluate, measured once and
  cached by sha256 beside the artifacts; an entry that does not check out is measured again);
- the direct-convolution FLOP bound (2·MACs / peak) from the ISA-estimated peak and from the measured
  sgemm rate, and the share of it each latency reaches (hardware.bounds). MACs are counted as a direct
  convolution does them; a Winograd kernel (ncnn's 3×3 convolutions) does fewer multiplications and can
  run below this bound (above 100 % of it).

Artifacts whose runtime is not installed here (the optional ncnn / executorch extras) are left out, each
runtime named in one note with what to install.

Each artifact's files are read once, hashed against the manifest, and every session of it (accuracy,
each thread count and shape) is built from those bytes: a row's sha256 is that of what it measured,
even if an export publishes meanwhile. An export older than the run's weights or recipe is refused
(rundir.staleness). Rows name the run by its resolved path (rundir.run_key): one set per run, from any
working directory.

Threads are pinned per backend by runtime.session (torch.set_num_threads, ORT intra_op_num_threads,
OpenVINO INFERENCE_NUM_THREADS + LATENCY hint + 1 stream). Storage precision and inference precision
are reported apart, the latter read back from the compiled model. Results: the run's bench file
(machine, settings, rows) and one CSV across runs (rundir.bench_results), both written atomically.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterable

import numpy as np

from ..errors import UserError
from ..provenance import git_commit, versions
from ..rundir import (DEFAULT_RESULTS, RUNS_ROOT, LoadedRun, RunDir, exported_runs, load_run,
                      require_finished, run_key, verified_export)
from ..rundir.accuracy_cache import AccuracyCache, CachedAccuracy
from ..rundir.bench_results import (BenchRecord, BenchRow, merge_csv, merge_rows, read_bench_rows,
                                   write_bench_record)
from ..rundir.manifest import listed_files
from ..rundir.staleness import require_current
from . import hardware
from .accuracy import evaluate
from .artifacts import BenchArtifact, list_artifacts
from .backends import RUNTIME_MODULE
from .bench_config import BenchConfig
from .choice import choose_deployment, current_rows
from .latency import load_average, measure_latency, measure_throughput
from .session import open_session

Progress = Callable[[str], None]

NOTES = {
    "latency": "per-call wall time (perf_counter_ns) at batch `batch`, after warm-up; ms",
    "shape": "static: compiled for batch `batch` only; dynamic: any batch; eager: PyTorch module",
    "throughput_ips": "images/s at `throughput_batch` on the dynamic session (batch / median call time)",
    "bound_ms_est": "direct-convolution FLOP bound: 2·MACs·batch / (ISA-estimated peak per core × min(threads, "
                    "cores)); a Winograd kernel (ncnn) does fewer multiplications and can be below it",
    "bound_ms_sgemm": "direct-convolution FLOP bound at the measured 1-thread sgemm rate × min(threads, cores)",
    "bound_ms_int8_est": "INT8 rows: 2·MACs·batch / (estimated INT8 peak per core: the vector units' dot-product "
                         "rate, or the AMX tile rate where the CPU has AMX)",
    "pct_bound": "100 × bound / median latency (rows computed in bf16, ...@bf16, against the FP32 bounds; "
                 "bench/latency.py gives the bf16 bound)",
    "accuracy": "top-1 % on the run's test split, this artifact on this backend (cached by sha256)",
}


def resolve_runs(runs: Iterable[str | Path] | None, root: str | Path = RUNS_ROOT) -> list[Path]:
    """The named runs (each must have finished), or every exported run under `root`."""
    if runs:
        return [require_finished(r) for r in runs]
    found = exported_runs(root)
    if not found:
        raise UserError(f"{root}: no finished run with an export; "
                        "export one with `mimkd-edge export RUN`, or name RUN")
    return found


def bench_runs(runs: Iterable[str | Path] | None = None, config: BenchConfig | None = None, *,
               results: str | Path | None = DEFAULT_RESULTS, root: str | Path = RUNS_ROOT,
               progress: Progress | None = None, machine: dict | None = None,
               data_dir: str | None = None, note: Progress | None = None) -> list[BenchRow]:
    """Benchmark `runs` (default: every exported run under `root`); returns the result rows.

    Writes each run's bench file and merges the rows into the CSV `results` (None: no CSV).
    `progress` gets transient status lines; `note` what the user should read afterwards (default: progress).
    `machine` (from hardware.machine_info) is measured once here when not given. `data_dir` is where
    the test split lives when not where the recipe says (as `mimkd-edge train --data-dir`).
    """
    config = config or BenchConfig()
    say = progress or (lambda message: None)
    tell = note or say
    paths = resolve_runs(runs, root)
    load_start = load_average()
    if machine is None:
        say("probing the machine (CPU, ISA, clock, sgemm)")
        machine = hardware.machine_info(sgemm=config.sgemm)
    import torch

    torch_threads = torch.get_num_threads()  # the torch backend changes it process-wide: restore it
    all_rows: list[BenchRow] = []
    try:
        for path in paths:
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            run_load_start = load_average()
            rows = bench_one_run(path, config, machine, say, data_dir, note=tell)
            kept = merge_rows(read_bench_rows(path, strict=False), rows)  # what the bench file will hold
            choices = [c.as_dict() for c in choose_deployment(current_rows(kept, machine["cpu"]["model"],
                                                                           _exported_hashes(path)))]
            write_bench_record(path, BenchRecord(
                run=run_key(path), machine={**machine, "load_average_start": run_load_start,
                                            "load_average_end": load_average()},
                settings=asdict(config), rows=rows, versions=versions(), git_commit=git_commit(),
                started_at=started, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), notes=NOTES,
                choices=choices))
            all_rows.extend(rows)
    finally:
        torch.set_num_threads(torch_threads)
    if results is not None:
        merge_csv(results, all_rows)
    machine["load_average_start"], machine["load_average_end"] = load_start, load_average()
    return all_rows


class _TestSplit:
    """The run's test split, loaded on first use only (every accuracy may come from the cache)."""

    def __init__(self, loaded: LoadedRun, data_dir: str | None, say: Progress):
        self.loaded, self.data_dir, self.say, self.splits = loaded, data_dir, say, None

    def get(self):
        if self.splits is None:
            from ..data import load_splits

            self.say(f"{self.loaded.path}: loading the {self.loaded.recipe.data.dataset} test split")
            self.splits = load_splits(self.loaded.recipe.data, self.data_dir, recorded=self.loaded.data_source)
            self.say(f"{self.loaded.path}: data {self.splits.source} (from {self.splits.origin})")
        return self.splits


def artifact_accuracy(art: BenchArtifact, source, loaded: LoadedRun, cache: AccuracyCache, split: _TestSplit,
                      threads: int) -> CachedAccuracy:
    """The artifact's test accuracy on its backend: from the cache when measured on this test split, else
    measured on `source` (the student, or the artifact's checked bytes)."""
    if loaded.summary is not None:
        hit = cache.lookup(art.sha256, art.cache_backend, loaded.summary.test_split)
        if hit is not None:
            return hit
    splits = split.get()
    fingerprint = {"source": str(splits.source), "images": int(len(splits.test))}
    hit = cache.lookup(art.sha256, art.cache_backend, fingerprint)
    if hit is not None:
        return hit
    session = _open(source, art, threads, None)
    result = evaluate(session, splits.test, splits.mean, splits.std)
    return cache.store(art.sha256, art.cache_backend, result.correct, result.images, fingerprint,
                       artifact=_relative(art.path, loaded.path), inference_precision=session.inference_precision)


def _exported_hashes(path: Path) -> set[str]:
    """sha256 of every file the run's export manifest lists now: rows of other files (an export published
    mid-bench) decide no choice. Not re-hashed here: `predict RUN` verifies the chosen file before use."""
    return {f.sha256 for f in listed_files(RunDir(path).export).values()}


def bench_one_run(path: Path, config: BenchConfig, machine: dict, say: Progress,
                  data_dir: str | None = None, note: Progress | None = None) -> list[BenchRow]:
    loaded = load_run(path)
    run = RunDir(path)
    export, manifest = verified_export(run.export) if run.exported else (run.export, None)
    if export != run.export:
        (note or say)(f"{path}: a newer export is being published, or its publish was killed: measured the "
                      f"previous export, kept whole in {export} (export the run again to complete it)")
    if manifest is not None:
        require_current(path, manifest, loaded.weights_sha256)
    artifacts = _runnable(list_artifacts(path, manifest, config.backends, config.precisions, config.ov_compute,
                                         weights=(loaded.weights_sha256, loaded.weights_size), export=export),
                          path, note or say)
    if not artifacts:
        raise UserError(f"{path}: nothing to benchmark for backends {','.join(config.backends)} and precisions "
                        f"{','.join(config.precisions)} (export it with `mimkd-edge export {path}`?)")
    size, chans = loaded.model.input_size, loaded.model.in_chans  # the geometry the run trained at
    summary, recipe = loaded.summary, loaded.recipe
    if summary is not None:
        macs, params = summary.student.macs, summary.student.params
    else:
        from ..models.cost import count_macs, count_params

        macs, params = count_macs(loaded.model, size), count_params(loaded.model)
    base = dict(run=run_key(path), name=recipe.name, dataset=summary.data.dataset if summary else recipe.data.dataset,
                student=recipe.student.model, method=recipe.method.name, params=params, macs=macs,
                data_name=_data_name(summary),
                run_final_test_acc=summary.final_test_acc if summary else None, cpu=machine["cpu"]["model"],
                batch=config.batch)
    cache, split = AccuracyCache(run.export), _TestSplit(loaded, data_dir, say)
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((config.batch, chans, size, size)).astype(np.float32)
    xn = rng.standard_normal((config.throughput_batch, chans, size, size)).astype(np.float32) \
        if config.throughput_batch else None
    eval_threads = max(config.threads + (os.cpu_count() or 1,))
    rows: list[BenchRow] = []
    for art in artifacts:
        source = loaded.model if art.backend == "torch" else art.read()  # checked once, then only these bytes
        acc = None
        if config.accuracy:
            say(f"{path.name}: test accuracy of {art.label} on {art.backend}")
            acc = artifact_accuracy(art, source, loaded, cache, split, eval_threads)
        for threads in config.threads:
            for shape in ("eager",) if art.backend == "torch" else config.shapes:
                say(f"{path.name}: {art.label} on {art.backend}, {threads} thread(s), {shape} batch {config.batch}")
                timing = _time_artifact(source, art, threads, shape, x1, xn, config)
                rows.append(BenchRow(
                    **base, artifact=art.label, format=art.format, backend=art.backend,
                    storage_precision=art.storage_precision, threads=threads, shape=shape,
                    size_bytes=art.size_bytes, sha256=art.sha256, accuracy=acc.accuracy if acc else None,
                    accuracy_images=acc.images if acc else None, **timing,
                    **hardware.bounds(machine, macs, config.batch, threads, timing["median_ms"],
                                      art.storage_precision)))
                gc.collect()
    return rows


def _runnable(artifacts: list[BenchArtifact], path: Path, tell: Progress) -> list[BenchArtifact]:
    """The artifacts whose runtime is installed here; the others are named, one note per missing runtime."""
    import importlib.util

    from ..errors import INSTALL_HINTS

    out, skipped = [], {}
    for art in artifacts:
        module = RUNTIME_MODULE[art.backend]
        if importlib.util.find_spec(module) is None:
            skipped.setdefault(module, []).append(art.label)
        else:
            out.append(art)
    for module, labels in skipped.items():
        tell(f"{path}: not measured: {', '.join(labels)} ({module} is not installed here: {INSTALL_HINTS[module]})")
    return out


def _time_artifact(source, art: BenchArtifact, threads: int, shape: str, x1: np.ndarray, xn: np.ndarray | None,
                   config: BenchConfig) -> dict[str, Any]:
    static = config.batch if shape == "static" else None
    seconds, iters = config.budget
    load_before = load_average()
    session = _open(source, art, threads, static)
    if art.backend == "torch":
        import torch

        torch.set_num_threads(threads)  # process-wide: set again in case another session changed it
    out: dict[str, Any] = {"inference_precision": session.inference_precision}
    out.update(measure_latency(session.run, x1, warmup=config.warmup, seconds=seconds, iters=iters))
    out.pop("max_ms", None)
    if xn is not None and static is None:
        tp = measure_throughput(session.run, xn, warmup=3, seconds=None if seconds is None else max(0.5, seconds / 2),
                                iters=None if iters is None else max(3, iters // 10))
        out.update(throughput_batch=tp["batch"], throughput_ips=tp["images_per_s"])
    load_after = load_average()
    out["load1_before"] = load_before[0] if load_before else None
    out["load1_after"] = load_after[0] if load_after else None
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    del session
    return out


def _open(source, art: BenchArtifact, threads: int, static: int | None):
    if art.backend == "openvino":
        return open_session(source, art.backend, threads=threads, static_batch=static, inference_precision=art.compute)
    return open_session(source, art.backend, threads=threads, static_batch=static)


def _relative(path: Path, run: Path) -> str:
    try:
        return path.resolve().relative_to(run.resolve()).as_posix()
    except ValueError:
        return str(path)


def _data_name(summary) -> str | None:
    """An image folder's name (the folder the run read), so a figure names the data set; None for CIFAR."""
    if summary is None or summary.data.dataset != "imagefolder" or not summary.data.source:
        return None
    from ..data.folder import data_name

    return data_name(summary.data.source)
