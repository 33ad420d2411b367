"""Benchmark results, typed: one `BenchRow` per run × artifact × backend × threads × shape × batch.

The row's fields are the CSV's columns (in order) and their types parse it back, so the layout is
written once. Rows live in two files, both rewritten atomically: RUN's bench file (the machine and
settings of its latest benchmark, and its rows) and one CSV across runs (default runs/bench.csv).
In both, a new row replaces an older one with the same key; the rest are kept.
"""

from __future__ import annotations

import csv
import io
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from ..atomic import read_json, write_json, write_text
from ..errors import UserError
from .layout import DEFAULT_RESULTS, RunDir, run_key

SCHEMA = 1
KEY = ("run", "artifact", "backend", "threads", "shape", "batch")


@dataclass(frozen=True)
class BenchRow:
    run: str  # the run directory, relative to the working directory when inside it
    artifact: str  # "torch-fp32", "onnx-int8", "openvino-fp32@bf16", ...
    backend: str
    threads: int
    shape: str  # "static" | "dynamic" | "eager"
    batch: int
    name: str | None = None
    dataset: str | None = None
    student: str | None = None
    method: str | None = None
    params: int | None = None
    macs: int | None = None
    format: str | None = None
    storage_precision: str | None = None
    inference_precision: str | None = None
    median_ms: float | None = None
    mean_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    min_ms: float | None = None
    std_ms: float | None = None
    iters: int | None = None
    throughput_batch: int | None = None
    throughput_ips: float | None = None
    accuracy: float | None = None
    accuracy_images: int | None = None
    run_final_test_acc: float | None = None
    bound_ms_est: float | None = None
    pct_bound_est: float | None = None
    bound_ms_sgemm: float | None = None
    pct_bound_sgemm: float | None = None
    bound_ms_int8_est: float | None = None
    pct_bound_int8_est: float | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    load1_before: float | None = None
    load1_after: float | None = None
    cpu: str | None = None
    measured_at: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, k)) for k in KEY)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, where: Path) -> BenchRow:
        """A row from the CSV (strings) or a bench file (JSON values); unknown columns are ignored."""
        if not isinstance(raw, dict):
            raise UserError(f"{where}: a benchmark row must be a table of columns, found {type(raw).__name__}")
        values = {}
        for name, kind in _TYPES.items():
            if name in raw:
                values[name] = _parse(kind, raw[name])
        try:
            return cls(**values)
        except TypeError as e:
            raise UserError(f"{where}: not a benchmark row of this tool ({e})") from None


COLUMNS = tuple(f.name for f in fields(BenchRow))
_TYPES = {name: typing.get_type_hints(BenchRow)[name] for name in COLUMNS}


def _parse(kind, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        if int in typing.get_args(kind) or kind is int:
            return int(float(value))
        if float in typing.get_args(kind) or kind is float:
            return float(value)
    except (TypeError, ValueError):
        return value
    return value


def merge_rows(old: list[BenchRow], new: list[BenchRow]) -> list[BenchRow]:
    """`old` with rows sharing a key with `new` replaced (in place of the first), the rest appended."""
    fresh = {r.key: r for r in new}  # the last of duplicate new rows wins
    out: list[BenchRow] = []
    placed: set[tuple[str, ...]] = set()
    for r in old:
        if r.key not in fresh:
            out.append(r)
        elif r.key not in placed:
            out.append(fresh[r.key])
            placed.add(r.key)
    out.extend(r for k, r in fresh.items() if k not in placed)
    return out


def read_csv(path: str | Path) -> list[BenchRow]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no results file (run `mimkd-edge bench` first, or pass --results)") from None
    return [BenchRow.from_dict(raw, path) for raw in csv.DictReader(io.StringIO(text))]


def merge_csv(path: str | Path, rows: list[BenchRow]) -> Path:
    """Merge `rows` into the CSV at `path` (replacing rows with the same key); atomic rewrite."""
    path = Path(path)
    merged = merge_rows(read_csv(path) if path.is_file() else [], rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in merged:
        writer.writerow({k: _cell(v) for k, v in r.as_dict().items()})
    write_text(path, buf.getvalue())
    return path


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


@dataclass(frozen=True)
class BenchRecord:
    """A run's bench file: the latest invocation's machine and settings, and every row kept."""

    run: str
    machine: dict
    settings: dict
    rows: list[BenchRow]
    versions: dict
    git_commit: str | None
    started_at: str
    finished_at: str
    notes: dict
    schema: int = SCHEMA
    choices: list[dict] = field(default_factory=list)  # runtime.choice.DeployChoice per precision, as dicts


def write_bench_record(run: str | Path, record: BenchRecord) -> Path:
    """Write RUN's bench file, keeping rows of earlier invocations that `record` does not replace."""
    path = RunDir(run).bench
    previous = read_bench_rows(run, strict=False) if path.is_file() else []
    body = asdict(record)
    body["rows"] = [r.as_dict() for r in merge_rows(previous, record.rows)]
    write_json(path, body)
    return path


def read_bench_rows(run: str | Path, *, strict: bool = True) -> list[BenchRow]:
    """The rows of RUN's bench file (none when there is none). An unreadable file is one UserError
    naming it, or, with strict=False (a bench about to rewrite the file), counts as no rows."""
    path = RunDir(run).bench
    if not path.is_file():
        return []
    try:
        raw = read_json(path)
        if not isinstance(raw, dict) or not isinstance(raw.get("rows", []), list):
            raise UserError(f"{path}: not a bench file of this tool (expected an object with a `rows` list)")
        return [BenchRow.from_dict(r, path) for r in raw.get("rows", [])]
    except UserError:
        if strict:
            raise
        return []


def read_deploy_choices(run: str | Path) -> list[dict]:
    """The deployment choices RUN's latest benchmark recorded (`runtime.choice`), fastest-per-precision;
    a one-line UserError when the run has no bench file or it records none."""
    path = RunDir(run).bench
    if not path.is_file():
        raise UserError(f"{run}: not benchmarked (no {path.name}); run `mimkd-edge bench {run}` first, "
                        "or name an artifact file")
    raw = read_json(path)
    choices = raw.get("choices") if isinstance(raw, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise UserError(f"{path}: records no deployment choice (benchmarked before choices were recorded, or no "
                        "exported artifact kept its accuracy); run `mimkd-edge bench` on it again")
    return choices


def read_bench_machine(run: str | Path) -> dict | None:
    """The machine RUN was last benchmarked on (CPU, peaks, load), or None."""
    path = RunDir(run).bench
    if not path.is_file():
        return None
    raw = read_json(path)
    return raw.get("machine") if isinstance(raw, dict) else None


def load_results(runs: Iterable[str | Path] | None = None, results: str | Path | None = None) -> list[BenchRow]:
    """Rows to report: from the CSV `results` (default runs/bench.csv), restricted to `runs` when
    given; a named run's own bench file is used when the CSV lacks it."""
    runs = list(runs or [])
    source = Path(results) if results is not None else DEFAULT_RESULTS
    rows: list[BenchRow] = []
    if source.is_file():
        rows = read_csv(source)
    elif results is not None or not runs:
        raise UserError(f"{source}: no results file (run `mimkd-edge bench` first, or pass --results)")
    if not runs:
        return rows
    wanted = {run_key(Path(r)) for r in runs}
    picked = [r for r in rows if r.run in wanted]
    for r in runs:
        if any(row.run == run_key(Path(r)) for row in picked):
            continue
        if not RunDir(r).benched:
            raise UserError(f"{r}: no benchmark results for this run in {source} or {RunDir(r).bench} "
                            f"(run `mimkd-edge bench {r}` first)")
        picked.extend(read_bench_rows(r))
    return picked
