"""Benchmark results, typed: one `BenchRow` per run × artifact × backend × threads × shape × batch.

The row's fields are the CSV's columns (in order) and their types parse it back, so the layout is
written once. Rows live in two files, both rewritten atomically: RUN's bench file (the machine and
settings of its latest benchmark, and its rows) and one CSV across runs (default runs/bench.csv).
In both, a new row replaces an older one with the same key; the rest are kept. A row's `run` is the
run's resolved path (layout.run_key), so the same run benched from any folder is one set of rows; older
rows naming it relative to the working directory are read as such, and a run's own bench file holds
that run's rows only.

Every value read back is checked against its column's type (a number that is not one, a list where a
name goes) and a file of the wrong shape is one UserError naming it: hand edits and other tools' files
under these names stop here rather than as a traceback in plot or predict.
"""

from __future__ import annotations

import csv
import io
import math
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from collections.abc import Iterable

from ..atomic import read_json, write_json, write_text
from ..errors import UserError
from ..runtime.backends import ARTIFACT_BACKENDS
from .layout import DEFAULT_RESULTS, RunDir, run_key

SCHEMA = 1
KEY = ("run", "artifact", "backend", "threads", "shape", "batch")


@dataclass(frozen=True)
class BenchRow:
    run: str  # the run directory, resolved (layout.run_key)
    artifact: str  # "torch-fp32", "onnx-int8", "openvino-fp32@bf16", ...
    backend: str
    threads: int
    shape: str  # "static" | "dynamic" | "eager"
    batch: int
    name: str | None = None
    dataset: str | None = None
    data_name: str | None = None  # an image folder's name (its folder or archive), which names it in figures
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
        """What makes a row unique: the run (by its resolved path, whichever name it was written with) and
        what was measured."""
        return (run_key(self.run), *(str(getattr(self, k)) for k in KEY[1:]))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, where: Path | str) -> BenchRow:
        """A row from the CSV (strings) or a bench file (JSON values); unknown columns are ignored."""
        if not isinstance(raw, dict):
            raise UserError(f"{where}: a benchmark row must be a table of columns, found {type(raw).__name__}")
        values = {}
        for name, kind in _TYPES.items():
            if name in raw:
                values[name] = _parse(kind, raw[name], name, where)
        try:
            return cls(**values)
        except TypeError as e:
            raise UserError(f"{where}: not a benchmark row of this tool ({e})") from None


COLUMNS = tuple(f.name for f in fields(BenchRow))
_TYPES = {name: typing.get_type_hints(BenchRow)[name] for name in COLUMNS}


def _parse(kind, value: Any, column: str, where: Path | str) -> Any:
    """`value` (a CSV string or a JSON value) as its column's type; one UserError when it is not one."""
    if value is None or value == "":
        return None
    allowed = typing.get_args(kind) or (kind,)
    parsed = _number(value, int in allowed) if (int in allowed or float in allowed) else value
    if parsed is None or (str in allowed and not isinstance(parsed, str)):
        expected = "an integer" if int in allowed else "a finite number" if float in allowed else "a string"
        raise UserError(f"{where}: column {column}: expected {expected}, got {str(value)[:40]!r}")
    return parsed


def _number(value: Any, integer: bool) -> int | float | None:
    """A finite number (an integer when `integer`) from a string or a JSON number; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    if not math.isfinite(f):
        return None
    if integer:
        return int(f) if f == int(f) else None
    return f


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
    return [BenchRow.from_dict(raw, f"{path}, line {i + 2}") for i, raw in enumerate(csv.DictReader(io.StringIO(text)))]


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
    """Write RUN's bench file, keeping rows of earlier invocations that `record` does not replace. The rows
    it holds are RUN's, whatever name they were written under (a relative one, from another folder)."""
    path = RunDir(run).bench
    previous = [replace(r, run=record.run) for r in read_bench_rows(run, strict=False)] if path.is_file() else []
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
    a one-line UserError when the run has no bench file, it records none, or one is malformed."""
    path = RunDir(run).bench
    if not path.is_file():
        raise UserError(f"{run}: not benchmarked (no {path.name}); run `mimkd-edge bench {run}` first, "
                        "or name an artifact file")
    raw = read_json(path)
    choices = raw.get("choices") if isinstance(raw, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise UserError(f"{path}: records no deployment choice (benchmarked before choices were recorded, or no "
                        "exported artifact kept its accuracy); run `mimkd-edge bench` on it again")
    for i, choice in enumerate(choices):
        problem = _choice_problem(choice)
        if problem:
            raise UserError(f"{path}: choices[{i}] is not a deployment choice of this tool ({problem}); "
                            "run `mimkd-edge bench` on it again")
    return choices


_CHOICE_STRINGS = ("precision", "artifact", "sha256", "why")


def _choice_problem(choice: dict) -> str | None:
    """What is wrong with one recorded choice (runtime.choice.DeployChoice as a dict), or None."""
    missing = [k for k in _CHOICE_STRINGS if not isinstance(choice.get(k), str)]
    if missing:
        return f"{', '.join(missing)} must be strings"
    if choice.get("backend") not in ARTIFACT_BACKENDS:
        return f"backend must be one of {', '.join(ARTIFACT_BACKENDS)}"
    if not isinstance(choice.get("compute", "f32"), str):
        return "compute must be a string"
    if _number(choice.get("median_ms"), False) is None:
        return "median_ms must be a finite number"
    return None


def read_bench_machine(run: str | Path) -> dict | None:
    """The machine RUN was last benchmarked on (CPU, peaks, load), or None; one UserError when it is not
    an object of objects where the report reads one."""
    path = RunDir(run).bench
    if not path.is_file():
        return None
    raw = read_json(path)
    machine = raw.get("machine") if isinstance(raw, dict) else None
    if machine is None:
        return None
    if not isinstance(machine, dict) or any(not isinstance(machine.get(k) or {}, dict)
                                            for k in ("cpu", "peak_estimated", "peak_measured")):
        raise UserError(f"{path}: not a bench file of this tool (`machine` must be an object, and its cpu and "
                        "peaks objects)")
    return machine


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
    wanted = {run_key(r) for r in runs}
    picked = [r for r in rows if run_key(r.run) in wanted]
    for r in runs:
        if any(run_key(row.run) == run_key(r) for row in picked):
            continue
        if not RunDir(r).benched:
            raise UserError(f"{r}: no benchmark results for this run in {source} or {RunDir(r).bench} "
                            f"(run `mimkd-edge bench {r}` first)")
        picked.extend(read_bench_rows(r))
    return picked
