"""The results table of a sweep (per student × method, test accuracy over seeds and CPU latency), and what
every comparison of runs over seeds starts from: runs grouped by student, method arm and seed, and the
provenance that says whether two runs of one seed trained alike.

Everything is read back from the run directories (the summary for accuracy and cost, the bench file
for latency), so the table can be regenerated at any time and checked against a committed copy.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable, Iterable

from ..recipe import read_toml
from ..rundir import RunDir, RunSummary, read_summary
from ..rundir.bench_results import BenchRow, read_bench_rows
from .tables import fixed_cell, markdown, method_arm_of, method_name, student_name

# (backend, storage precision) columns, in the order the table shows them
LATENCY_COLUMNS = (("torch", "fp32", "PyTorch"), ("onnxruntime", "fp32", "ORT FP32"),
                   ("openvino", "fp32", "OpenVINO FP32"), ("onnxruntime", "int8", "ORT INT8"),
                   ("openvino", "int8", "OpenVINO INT8"))
METHOD_ORDER = ("none", "kd", "kd-ls", "dkd", "dkd-ls", "fitnet", "at", "vid", "crd", "mimkd-w128", "mimkd", "mimkd+kd",
                "mimkd+kd-ls", "mimkd+dkd", "mimkd+dkd-ls")


def run_arm(run: Path) -> str:
    """The run's method as the reports group it (`tables.method_arm`: MIMKD split by critic width),
    read from the run's recorded recipe as plain TOML: runs of older versions, whose recipes carry
    keys this version no longer takes, are still reported."""
    return method_arm_of(read_toml(RunDir(run).recipe).get("method", {}))


def arm_rows(runs: Iterable[Path]) -> list[BenchRow]:
    """Every row of the runs' bench files, its method replaced by its run's arm (`run_arm`), for the
    trade-off figure. Read per run directory: a row's recorded run path is where it was benchmarked."""
    return [replace(row, method=run_arm(run)) for run in runs for row in read_bench_rows(run)]


def _latency(run: Path, backend: str, precision: str) -> float | None:
    """Median batch-1 latency of the run's artifact on one thread, static compilation (eager for torch)."""
    for row in read_bench_rows(run):
        if (row.backend == backend and row.storage_precision == precision and row.threads == 1
                and row.batch == 1 and row.shape in ("static", "eager")
                and row.inference_precision in (precision, "fp32", "int8")):
            return row.median_ms
    return None


def protocol_rows(runs: Iterable[Path], setting: Callable[[Path], str] | None = None) -> list[dict]:
    """One row per (student, method): accuracy mean ± std over seeds, median latency over seeds.

    `setting` (a sweep passes each run's grid values) splits a method's row further, so that runs of
    one method at different settings (sampled locations, loss weights, ...) are never averaged into
    one row; without it only the method arm (`run_arm`) tells runs apart."""
    groups: dict[tuple[str, str, str], list[Path]] = {}
    for run in runs:
        s = read_summary(run)
        groups.setdefault((s.student.model, run_arm(run), setting(run) if setting else ""), []).append(run)
    rows = []
    for (student, method, grid), members in groups.items():
        summaries = [read_summary(r) for r in sorted(members)]
        accs = [s.final_test_acc for s in summaries]
        first = summaries[0]
        row = {"student": student, "method": method, "setting": grid, "seeds": sorted(s.seed for s in summaries),
               "acc_mean": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else None,
               "params": first.student.params, "macs": first.student.macs,
               "epochs": first.epochs, "teacher": (first.teacher or {}).get("model")}
        for backend, precision, label in LATENCY_COLUMNS:
            values = [v for v in (_latency(r, backend, precision) for r in members) if v is not None]
            row[label] = statistics.median(values) if values else None
        rows.append(row)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["macs"], r["student"], order.get(r["method"], 99), r["setting"]))


def protocol_markdown(rows: list[dict]) -> str:
    """The table of `protocol_rows`; a "setting" column appears when any row has one."""
    with_setting = any(r.get("setting") for r in rows)
    columns = ["student", "method", *(["setting"] if with_setting else []), "seeds", "test acc % (mean ± std)",
               *[f"{label} ms" for _, _, label in LATENCY_COLUMNS], "params", "MACs"]
    body = []
    for r in rows:
        acc = f"{r['acc_mean']:.2f}" + (f" ± {r['acc_std']:.2f}" if r["acc_std"] is not None else "")
        body.append([student_name(r["student"]), method_name(r["method"]),
                     *([r.get("setting") or "–"] if with_setting else []), len(r["seeds"]), acc,
                     *[fixed_cell(r[label], 3) for _, _, label in LATENCY_COLUMNS],
                     f"{r['params']:,}", f"{r['macs'] / 1e6:.1f} M"])
    return markdown(columns, body, align=["l", "l", *(["l"] if with_setting else [])]
                    + ["r"] * (len(columns) - 2 - with_setting))


def seed_summaries(runs: Iterable[Path]) -> dict[str, dict[str, dict[int, RunSummary]]]:
    """student → method arm (`run_arm`) → seed → the run's summary."""
    out: dict[str, dict[str, dict[int, RunSummary]]] = {}
    for run in runs:
        s = read_summary(run)
        out.setdefault(s.student.model, {}).setdefault(run_arm(run), {})[s.seed] = s
    return out


def run_provenance(s: RunSummary) -> tuple[set[str | None], set[str | None]]:
    """The CPUs and the commits a run trained on: every session's (a resumed run has several), else, for
    runs older than sessions, the summary's own. A "+dirty" tree counts as its commit; None: not recorded."""
    sessions = s.sessions or [{"cpu": s.cpu, "git_commit": s.git_commit}]
    commits = {(x.get("git_commit") or "").removesuffix("+dirty") or None for x in sessions}
    return {x.get("cpu") or None for x in sessions}, commits


def pair_flag(a: RunSummary, b: RunSummary) -> str:
    """Why two runs of one seed may differ by more than their method: "CPU" and/or "commit" when their
    sessions (`run_provenance`) cross CPUs or commits, between the runs or within one; "CPU unknown" /
    "commit unknown" when a run did not record it. "" when both trained on one CPU at one commit."""
    (cpus_a, commits_a), (cpus_b, commits_b) = run_provenance(a), run_provenance(b)
    reasons = []
    for what, values in (("CPU", cpus_a | cpus_b), ("commit", commits_a | commits_b)):
        if None in values:
            reasons.append(f"{what} unknown")
        elif len(values) > 1:
            reasons.append(what)
    return ", ".join(reasons)
