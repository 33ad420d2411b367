"""CPU benchmark of finished, exported runs: latency, throughput, accuracy, and the FLOP bound.

    rows = bench_runs(["runs/c4mp"], BenchConfig(threads=(1, 2)), results="runs/bench.csv")

For every run × artifact × backend × thread count:

- batch-1 latency (median, mean, p90, p99, min of per-call times) on a **static** batch-1
  compilation (ORT's free dimension fixed; OpenVINO reshaped) and on the **dynamic** one (any batch);
- throughput (images/s) at a larger batch on the dynamic session;
- test-set top-1 of the artifact on that backend (measured once, cached by sha256 in
  RUN/export/accuracy_cache.json);
- the FLOP bound (2·MACs / peak) from the ISA-estimated peak and from the measured sgemm rate, and
  the share of it each latency reaches.

Artifacts come from RUN/export/manifest.json, verified first (runtime/manifest.load_verified: every
listed file re-hashed; a changed file stops the bench with one line naming it): .onnx files run on
onnxruntime, OpenVINO IRs on openvino (an FP32 .onnx is given to OpenVINO only where the manifest has
no FP32 IR). The PyTorch eager student (RUN/model.safetensors) is the "torch" backend, fp32; it has no static compilation, so
its rows say shape "eager". With `ov_compute` = ("f32", "bf16") each FP32/FP16 IR also runs with
OpenVINO asked to compute in bf16 (label "...@bf16", its accuracy measured on its own). Threads are
pinned per backend by runtime.session (torch.set_num_threads, ORT intra_op_num_threads, OpenVINO
INFERENCE_NUM_THREADS + LATENCY hint + 1 stream). Storage precision and inference precision are
reported apart, the latter read back from the compiled model.

Results: RUN/bench.json (the machine: CPU, cores, ISA, clock, both peaks, versions, load average at
start and end; the settings; the rows) and one CSV across runs (default runs/bench.csv), where a
row replaces an earlier row with the same key (run, artifact, backend, threads, shape, batch). Both
are written atomically.
"""

from __future__ import annotations

import csv
import gc
import io
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..engine import rundir
from ..engine.checkpoint import write_json, write_text
from ..errors import UserError
from ..provenance import git_commit, sha256_file, versions
from . import hardware
from .accuracy import CACHE_NAME, AccuracyCache, run_split
from .latency import load_average, measure_latency, measure_throughput
from .manifest import load_verified
from .session import BACKENDS, open_session

PRECISIONS = ("fp32", "fp16", "int8")
SHAPES = ("static", "dynamic")
OV_COMPUTE = ("f32", "bf16")
DEFAULT_RESULTS = rundir.RUNS_ROOT / "bench.csv"
DEFAULT_SECONDS = 2.0
BENCH_JSON = "bench.json"
EXPORT_DIR, MANIFEST = "export", "manifest.json"

KEY = ("run", "artifact", "backend", "threads", "shape", "batch")
COLUMNS = (
    "run", "name", "dataset", "student", "method", "params", "macs",
    "artifact", "format", "backend", "storage_precision", "inference_precision",
    "threads", "shape", "batch", "median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "std_ms", "iters",
    "throughput_batch", "throughput_ips", "accuracy", "accuracy_images", "run_final_test_acc",
    "bound_ms_est", "pct_bound_est", "bound_ms_sgemm", "pct_bound_sgemm", "bound_ms_int8_est", "pct_bound_int8_est",
    "size_bytes", "sha256", "load1_before", "load1_after", "cpu", "measured_at",
)
_INT = {"params", "macs", "threads", "batch", "iters", "throughput_batch", "accuracy_images", "size_bytes"}
_FLOAT = {"median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "std_ms", "throughput_ips", "accuracy",
          "run_final_test_acc", "bound_ms_est", "pct_bound_est", "bound_ms_sgemm", "pct_bound_sgemm",
          "bound_ms_int8_est", "pct_bound_int8_est",
          "load1_before", "load1_after"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    backends: tuple[str, ...] = BACKENDS
    precisions: tuple[str, ...] = PRECISIONS
    threads: tuple[int, ...] = (1,)
    batch: int = 1
    throughput_batch: int = 64  # 0: no throughput measurement
    seconds: float | None = None  # time budget per latency measurement (default 2 s) ...
    iters: int | None = None  # ... or a fixed number of timed calls
    warmup: int = 20
    shapes: tuple[str, ...] = SHAPES
    ov_compute: tuple[str, ...] = ("f32",)  # OpenVINO inference precisions to run each IR at ("f32", "bf16")
    accuracy: bool = True
    sgemm: bool = True  # measure the FP32 matmul rate (about a second)

    def __post_init__(self) -> None:
        bad = [b for b in self.backends if b not in BACKENDS]
        if bad or not self.backends:
            raise UserError(f"--backend: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(BACKENDS)}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise UserError(f"--precision: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(PRECISIONS)}")
        bad = [s for s in self.shapes if s not in SHAPES]
        if bad or not self.shapes:
            raise UserError(f"shapes: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(SHAPES)}")
        bad = [c for c in self.ov_compute if c not in OV_COMPUTE]
        if bad or not self.ov_compute:
            raise UserError(f"--ov-compute: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(OV_COMPUTE)}")
        if not self.threads or any(t < 1 for t in self.threads):
            raise UserError(f"--threads: positive integers, got {','.join(map(str, self.threads)) or '(none)'}")
        if self.batch < 1 or self.throughput_batch < 0:
            raise UserError("--batch must be >= 1 and --throughput-batch >= 0")
        if self.seconds is not None and self.iters is not None:
            raise UserError("--seconds and --iters exclude each other: give one")
        if self.seconds is None and self.iters is None:
            object.__setattr__(self, "seconds", DEFAULT_SECONDS)
        if (self.seconds is not None and self.seconds <= 0) or (self.iters is not None and self.iters < 1):
            raise UserError("--seconds must be > 0 and --iters >= 1")
        if self.warmup < 0:
            raise UserError("--warmup must be >= 0")


@dataclass
class Artifact:
    label: str  # e.g. "onnx-fp32", "openvino-int8", "torch-fp32"
    path: Path  # the file a session opens (run directory's weights for torch)
    format: str  # "pytorch" | "onnx" | "openvino-ir"
    backend: str
    storage_precision: str
    sha256: str
    size_bytes: int
    compute: str = "f32"  # OpenVINO's INFERENCE_PRECISION_HINT ("f32", "bf16"); f32 elsewhere

    @property
    def cache_backend(self) -> str:
        """The accuracy cache's backend key: a bf16-computing OpenVINO session is its own entry."""
        return self.backend if self.compute == "f32" else f"{self.backend}@{self.compute}"


def exported_runs(root: str | Path = rundir.RUNS_ROOT) -> list[Path]:
    """Finished runs under `root` that hold an export manifest."""
    return [p for p in rundir.finished_runs(root) if (p / EXPORT_DIR / MANIFEST).is_file()]


def run_key(path: Path) -> str:
    """How a run is named in results: relative to the working directory when inside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def read_manifest(run: Path) -> dict | None:
    """RUN/export/manifest.json, verified (every listed file re-hashed), or None without an export."""
    folder = run / EXPORT_DIR
    if not (folder / MANIFEST).is_file():
        return None
    return load_verified(folder)


def list_artifacts(run: Path, manifest: dict | None, config: BenchConfig) -> list[Artifact]:
    """The artifacts of `run` that `config` selects, each paired with the backend that runs it."""
    out: list[Artifact] = []
    if "torch" in config.backends and "fp32" in config.precisions:
        weights = run / rundir.WEIGHTS
        out.append(Artifact("torch-fp32", weights, "pytorch", "torch", "fp32", sha256_file(weights),
                            weights.stat().st_size))
    if manifest is None:
        return out
    folder = run / EXPORT_DIR
    entries = manifest.get("artifacts", [])
    ir_precisions = {a.get("storage_precision") for a in entries if a.get("format") == "openvino-ir"}
    for a in entries:
        path = folder / a["path"]
        precision = a.get("storage_precision", "fp32")
        fmt = a.get("format") or ("onnx" if path.suffix == ".onnx" else "openvino-ir")
        if precision not in config.precisions:
            continue
        size = sum(f["size"] for f in a["files"])
        sha = a["files"][0]["sha256"]  # verified against the file by read_manifest
        if fmt == "onnx":
            if "onnxruntime" in config.backends:
                out.append(Artifact(a.get("name", f"onnx-{precision}"), path, fmt, "onnxruntime", precision, sha, size))
            if "openvino" in config.backends and precision == "fp32" and "fp32" not in ir_precisions:
                out.extend(_ov_variants(Artifact(f"onnx-{precision}", path, fmt, "openvino", precision, sha, size),
                                        config))
        elif "openvino" in config.backends:
            out.extend(_ov_variants(Artifact(a.get("name", f"openvino-{precision}"), path, fmt, "openvino", precision,
                                             sha, size), config))
    return out


def _ov_variants(art: Artifact, config: BenchConfig) -> list[Artifact]:
    """One artifact per OpenVINO compute precision asked for; INT8 IRs run at f32 only (their
    quantised layers compute in int8 whatever the hint; the rest stays f32)."""
    hints = ("f32",) if art.storage_precision == "int8" else config.ov_compute
    return [art if h == "f32" else Artifact(f"{art.label}@{h}", art.path, art.format, art.backend,
                                            art.storage_precision, art.sha256, art.size_bytes, compute=h)
            for h in hints]


def _resolve_runs(runs: Iterable[str | Path] | None, root: str | Path) -> list[Path]:
    if runs:
        paths = [Path(r) for r in runs]
        for p in paths:
            if not p.is_dir():
                raise UserError(f"{p}: no such run directory")
            if not (p / rundir.WEIGHTS).is_file():
                raise UserError(f"{p}: no {rundir.WEIGHTS} in this run (did it finish?)")
        return paths
    found = exported_runs(root)
    if not found:
        raise UserError(f"{root}: no finished run with an export ({EXPORT_DIR}/{MANIFEST}); "
                        "export one with `mimkd-edge export RUN`, or name RUN")
    return found


def bench_runs(runs: Iterable[str | Path] | None = None, config: BenchConfig | None = None, *,
               results: str | Path | None = DEFAULT_RESULTS, root: str | Path = rundir.RUNS_ROOT,
               progress: Progress | None = None, machine: dict | None = None,
               data_dir: str | None = None) -> list[dict[str, Any]]:
    """Benchmark `runs` (default: every exported run under `root`); returns the result rows.

    Writes RUN/bench.json per run and merges the rows into the CSV `results` (None: no CSV).
    `machine` (from hardware.machine_info) is measured once here when not given. `data_dir` is where
    the test split lives when not where the recipe says (as `mimkd-edge train --data-dir`).
    """
    config = config or BenchConfig()
    say = progress or (lambda message: None)
    paths = _resolve_runs(runs, root)
    load_start = load_average()
    if machine is None:
        say("probing the machine (CPU, ISA, clock, sgemm)")
        machine = hardware.machine_info(sgemm=config.sgemm)
    import torch

    torch_threads = torch.get_num_threads()  # the torch backend changes it process-wide: restore it
    all_rows: list[dict[str, Any]] = []
    try:
        for path in paths:
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            run_load_start = load_average()
            rows = bench_one_run(path, config, machine, say, data_dir)
            run_load_end = load_average()
            _write_bench_json(path, rows, config, machine, run_load_start, run_load_end, started)
            all_rows.extend(rows)
    finally:
        torch.set_num_threads(torch_threads)
    if results is not None:
        merge_csv(results, all_rows)
    machine["load_average_start"], machine["load_average_end"] = load_start, load_average()
    return all_rows


def bench_one_run(path: Path, config: BenchConfig, machine: dict, say: Progress,
                  data_dir: str | None = None) -> list[dict[str, Any]]:
    loaded = rundir.load_run(path)
    summary = loaded.summary
    manifest = read_manifest(path)
    artifacts = list_artifacts(path, manifest, config)
    if not artifacts:
        raise UserError(f"{path}: nothing to benchmark for backends {','.join(config.backends)} and precisions "
                        f"{','.join(config.precisions)} (export it with `mimkd-edge export {path}`?)")
    size, chans = loaded.model.input_size, loaded.model.in_chans  # the geometry the run trained at
    student = summary.get("student") or {}
    macs = student.get("macs")
    if macs is None:
        from ..models.cost import count_macs

        macs = count_macs(loaded.model, size)
    base = {"run": run_key(path), "name": summary.get("name", loaded.recipe.name),
            "dataset": (summary.get("data") or {}).get("dataset", loaded.recipe.data.dataset),
            "student": student.get("model", loaded.recipe.student.model),
            "method": summary.get("method", loaded.recipe.method.name),
            "params": student.get("params"), "macs": macs,
            "run_final_test_acc": summary.get("final_test_acc"), "cpu": machine["cpu"]["model"]}

    cache = AccuracyCache(path / EXPORT_DIR / CACHE_NAME)
    split = run_split(summary)
    splits_holder: dict[str, Any] = {}

    def splits():
        if "s" not in splits_holder:
            from ..data import load_splits

            say(f"{path}: loading the {loaded.recipe.data.dataset} test split")
            splits_holder["s"] = load_splits(loaded.recipe.data, data_dir, recorded=loaded.data_source)
        return splits_holder["s"]

    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((config.batch, chans, size, size)).astype(np.float32)
    xn = rng.standard_normal((config.throughput_batch, chans, size, size)).astype(np.float32) \
        if config.throughput_batch else None
    eval_threads = max(config.threads + (os.cpu_count() or 1,))
    rows: list[dict[str, Any]] = []
    for art in artifacts:
        source = loaded.model if art.backend == "torch" else art.path
        acc: dict[str, Any] = {}
        if config.accuracy:
            say(f"{path.name}: test accuracy of {art.label} on {art.backend}")
            acc = cache.get_or_measure(art.sha256, art.cache_backend,
                                       lambda: _open(source, art, eval_threads, None),
                                       splits, artifact=_rel(art.path, path), split=split)
        shapes = ("eager",) if art.backend == "torch" else config.shapes
        for threads in config.threads:
            for shape in shapes:
                say(f"{path.name}: {art.label} on {art.backend}, {threads} thread(s), {shape} batch {config.batch}")
                row = dict(base)
                row.update(artifact=art.label, format=art.format, backend=art.backend,
                           storage_precision=art.storage_precision, threads=threads, shape=shape,
                           batch=config.batch, size_bytes=art.size_bytes, sha256=art.sha256,
                           accuracy=acc.get("accuracy"), accuracy_images=acc.get("images"))
                row.update(_time_artifact(source, art, threads, shape, x1, xn, config))
                _add_bounds(row, machine, macs, config.batch, threads)
                rows.append(row)
                gc.collect()
    return rows


def _time_artifact(source, art: Artifact, threads: int, shape: str, x1: np.ndarray, xn: np.ndarray | None,
                   config: BenchConfig) -> dict[str, Any]:
    static = config.batch if shape == "static" else None
    load_before = load_average()
    session = _open(source, art, threads, static)
    if art.backend == "torch":
        import torch

        torch.set_num_threads(threads)  # process-wide: set again in case another session changed it
    out: dict[str, Any] = {"inference_precision": session.inference_precision}
    out.update(measure_latency(session.run, x1, warmup=config.warmup, seconds=config.seconds, iters=config.iters))
    out.pop("max_ms", None)
    if xn is not None and static is None:
        tp = measure_throughput(session.run, xn, warmup=3,
                                seconds=None if config.seconds is None else max(0.5, config.seconds / 2),
                                iters=None if config.iters is None else max(3, config.iters // 10))
        out.update(throughput_batch=tp["batch"], throughput_ips=tp["images_per_s"])
    load_after = load_average()
    out["load1_before"] = load_before[0] if load_before else None
    out["load1_after"] = load_after[0] if load_after else None
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    del session
    return out


def _open(source, art: Artifact, threads: int, static: int | None):
    if art.backend == "openvino":
        return open_session(source, art.backend, threads=threads, static_batch=static, inference_precision=art.compute)
    return open_session(source, art.backend, threads=threads, static_batch=static)


def _add_bounds(row: dict, machine: dict, macs: int | None, batch: int, threads: int) -> None:
    """FLOP bound for `threads` cores (peak per core × min(threads, cores)) and % of it reached."""
    cores = machine.get("usable_cpus") or 1
    used = min(threads, cores)
    est = (machine.get("peak_estimated") or {}).get("gflops_per_core")
    meas = (machine.get("peak_measured") or {}).get("gflops_best")
    b_est = hardware.flop_bound_ms(macs, est * used if est else None, batch)
    b_meas = hardware.flop_bound_ms(macs, meas * used if meas else None, batch)
    row["bound_ms_est"], row["pct_bound_est"] = b_est, hardware.percent_of_bound(b_est, row.get("median_ms"))
    row["bound_ms_sgemm"], row["pct_bound_sgemm"] = b_meas, hardware.percent_of_bound(b_meas, row.get("median_ms"))
    int8 = (machine.get("peak_estimated") or {}).get("int8_gops_per_core")
    if row.get("storage_precision") == "int8" and int8:
        b_int8 = hardware.flop_bound_ms(macs, int8 * used, batch)
        row["bound_ms_int8_est"], row["pct_bound_int8_est"] = b_int8, hardware.percent_of_bound(b_int8, row.get("median_ms"))


def _rel(path: Path, run: Path) -> str:
    try:
        return path.resolve().relative_to(run.resolve()).as_posix()
    except ValueError:
        return str(path)


def _write_bench_json(run: Path, rows: list[dict], config: BenchConfig, machine: dict,
                      load_start, load_end, started: str) -> None:
    """RUN/bench.json: the machine and settings of the latest invocation; rows merged by key."""
    path = run / BENCH_JSON
    previous: list[dict] = []
    if path.is_file():
        try:
            previous = rundir.read_json(path).get("rows", [])
        except UserError:
            previous = []
    merged = merge_rows(previous, rows)
    write_json(path, {
        "schema": 1, "run": run_key(run),
        "machine": {**machine, "load_average_start": load_start, "load_average_end": load_end},
        "settings": asdict(config), "versions": versions(), "git_commit": git_commit(),
        "started_at": started, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notes": {
            "latency": "per-call wall time (perf_counter_ns) at batch `batch`, after warm-up; ms",
            "shape": "static: compiled for batch `batch` only; dynamic: any batch; eager: PyTorch module",
            "throughput_ips": "images/s at `throughput_batch` on the dynamic session (batch / median call time)",
            "bound_ms_est": "2·MACs·batch / (ISA-estimated peak per core × min(threads, cores)): estimated",
            "bound_ms_sgemm": "2·MACs·batch / (measured 1-thread sgemm rate × min(threads, cores))",
            "bound_ms_int8_est": "INT8 rows: 2·MACs·batch / (estimated INT8 peak = int8_factor × FP32 peak, per core)",
            "pct_bound": "100 × bound / median latency",
            "accuracy": "top-1 % on the run's test split, this artifact on this backend (cached by sha256)",
        },
        "rows": merged,
    })


def _key(row: dict) -> tuple[str, ...]:
    return tuple(str(row.get(k)) for k in KEY)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """`old` with rows sharing a key with `new` replaced (in place of the first), the rest appended."""
    fresh = {_key(r): r for r in new}  # the last of duplicate new rows wins
    out: list[dict] = []
    placed: set[tuple[str, ...]] = set()
    for r in old:
        k = _key(r)
        if k not in fresh:
            out.append(r)
        elif k not in placed:
            out.append(fresh[k])
            placed.add(k)
    for k, r in fresh.items():
        if k not in placed:
            out.append(r)
    return out


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a results CSV, numbers parsed back (empty cells → None)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no results file (run `mimkd-edge bench` first, or pass --results)") from None
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        rows.append({k: _parse(k, v) for k, v in raw.items() if k is not None})
    return rows


def _parse(key: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    try:
        if key in _INT:
            return int(float(value))
        if key in _FLOAT:
            return float(value)
    except ValueError:
        return value
    return value


def merge_csv(path: str | Path, rows: list[dict]) -> Path:
    """Merge `rows` into the CSV at `path` (replacing rows with the same key); atomic rewrite."""
    path = Path(path)
    old = read_csv(path) if path.is_file() else []
    merged = merge_rows(old, rows)
    extra = sorted({k for r in merged for k in r} - set(COLUMNS))
    columns = list(COLUMNS) + extra
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in merged:
        writer.writerow({k: _cell(r.get(k)) for k in columns})
    write_text(path, buf.getvalue())
    return path


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def load_results(runs: Iterable[str | Path] | None = None, results: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows to report: from the CSV `results` (default runs/bench.csv), restricted to `runs` when
    given; a named run's own bench.json is used when the CSV lacks it."""
    runs = list(runs or [])
    source = Path(results) if results is not None else DEFAULT_RESULTS
    rows: list[dict[str, Any]] = []
    if source.is_file():
        rows = read_csv(source)
    elif results is not None or not runs:
        raise UserError(f"{source}: no results file (run `mimkd-edge bench` first, or pass --results)")
    if not runs:
        return rows
    wanted = {run_key(Path(r)) for r in runs}
    picked = [r for r in rows if r.get("run") in wanted]
    for r in runs:
        key = run_key(Path(r))
        if any(row.get("run") == key for row in picked):
            continue
        bench = Path(r) / BENCH_JSON
        if not bench.is_file():
            raise UserError(f"{r}: no benchmark results for this run in {source} or {bench} "
                            f"(run `mimkd-edge bench {r}` first)")
        picked.extend(rundir.read_json(bench).get("rows", []))
    return picked
