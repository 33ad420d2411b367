"""The results table of a sweep: per student × method, test accuracy over seeds and CPU latency.

Everything is read back from the run directories (summary.json for accuracy and cost, bench.json
for latency), so the table can be regenerated at any time and checked against a committed copy.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Iterable

from ..engine import rundir
from .tables import _fixed, markdown, method_name, student_name

# (backend, storage precision) columns, in the order the table shows them
LATENCY_COLUMNS = (("torch", "fp32", "PyTorch"), ("onnxruntime", "fp32", "ORT FP32"), ("openvino", "fp32", "OpenVINO FP32"),
                   ("onnxruntime", "int8", "ORT INT8"), ("openvino", "int8", "OpenVINO INT8"))
METHOD_ORDER = ("none", "kd", "fitnet", "at", "vid", "crd", "mimkd")


def _latency(run: Path, backend: str, precision: str) -> float | None:
    """Median batch-1 latency of the run's artifact on one thread, static compilation (eager for torch)."""
    path = run / "bench.json"
    if not path.is_file():
        return None
    for row in rundir.read_json(path).get("rows", []):
        if (row.get("backend") == backend and row.get("storage_precision") == precision and row.get("threads") == 1
                and row.get("batch") == 1 and row.get("shape") in ("static", "eager")
                and row.get("inference_precision") in (precision, "fp32", "int8")):
            return row.get("median_ms")
    return None


def protocol_rows(runs: Iterable[Path]) -> list[dict]:
    """One row per (student, method): accuracy mean ± std over seeds, median latency over seeds."""
    groups: dict[tuple[str, str], list[Path]] = {}
    for run in runs:
        s = rundir.read_json(run / rundir.SUMMARY)
        groups.setdefault((s["student"]["model"], s["method"]), []).append(run)
    rows = []
    for (student, method), members in groups.items():
        summaries = [rundir.read_json(r / rundir.SUMMARY) for r in sorted(members)]
        accs = [s["final_test_acc"] for s in summaries]
        row = {"student": student, "method": method, "seeds": sorted(s["seed"] for s in summaries),
               "acc_mean": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else None,
               "params": summaries[0]["student"]["params"], "macs": summaries[0]["student"]["macs"],
               "epochs": summaries[0]["epochs"], "teacher": (summaries[0].get("teacher") or {}).get("model")}
        for backend, precision, label in LATENCY_COLUMNS:
            values = [v for v in (_latency(r, backend, precision) for r in members) if v is not None]
            row[label] = statistics.median(values) if values else None
        rows.append(row)
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(rows, key=lambda r: (r["macs"], r["student"], order.get(r["method"], 99)))


def protocol_markdown(rows: list[dict]) -> str:
    columns = ["student", "method", "seeds", "test acc % (mean ± std)",
               *[f"{label} ms" for _, _, label in LATENCY_COLUMNS], "params", "MACs"]
    body = []
    for r in rows:
        acc = f"{r['acc_mean']:.2f}" + (f" ± {r['acc_std']:.2f}" if r["acc_std"] is not None else "")
        body.append([student_name(r["student"]), method_name(r["method"]), len(r["seeds"]), acc,
                     *[_fixed(r[label], 3) for _, _, label in LATENCY_COLUMNS],
                     f"{r['params']:,}", f"{r['macs'] / 1e6:.1f} M"])
    return markdown(columns, body, align=["l", "l"] + ["r"] * (len(columns) - 2))
