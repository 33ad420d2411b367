"""Markdown tables of benchmark results: the plotted points, every row, and the paper's numbers."""

from __future__ import annotations

from typing import Any
from collections.abc import Iterable, Sequence

from .paper import paper_rows

RUNTIME_NAMES = {"torch": "PyTorch eager", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "ncnn": "ncnn",
                 "executorch": "ExecuTorch (XNNPACK)"}
METHOD_NAMES = {"none": "baseline (CE)", "kd": "KD", "crd": "CRD", "mimkd": "MIMKD", "fitnet": "FitNets",
                "at": "AT", "vid": "VID", "dkd": "DKD", "kd-ls": "KD + LS", "dkd-ls": "DKD + LS"}
STUDENT_NAMES = {"conv4": "Conv-4", "conv4_mp": "Conv-4-MP", "shufflenetv2": "ShuffleNetV2",
                 "shufflenetv1": "ShuffleNetV1", "mobilenetv2": "MobileNetV2", "resnet8x4": "ResNet-8x4",
                 "resnet8": "ResNet-8", "resnet20": "ResNet-20", "vgg8": "VGG-8", "wrn_16_1": "WRN-16-1",
                 "wrn_16_2": "WRN-16-2", "wrn_40_2": "WRN-40-2"}
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "synthetic": "synthetic",
                 "imagefolder": "image folder"}


def student_name(s: str | None) -> str:
    return STUDENT_NAMES.get(s or "", s or "?")


PAPER_CRITIC_WIDTH = 512  # MIMKD's critics as the paper sets them (hidden width)


def method_arm(method: str | None, critic_hidden: int | None = None) -> str:
    """The method as the reports group it: MIMKD at another critic width than the paper's is its own
    arm ("mimkd-w128"), so the two never pool into one row; every other method is its name."""
    if method == "mimkd" and critic_hidden is not None and critic_hidden != PAPER_CRITIC_WIDTH:
        return f"mimkd-w{critic_hidden}"
    return method or "?"


def method_arm_of(table: dict) -> str:
    """The arm of a recipe's [method] table (read as plain TOML): `method_arm`, then "-ls" for KD or DKD
    with logit standardisation, and "+<term>" for MIMKD with a logit term (our extension): "+kd" for
    KD beside CE (alpha < 1), "+kd-ls", "+dkd", "+dkd-ls". Arms are never pooled in one row."""
    name = table.get("name")
    arm = method_arm(name, table.get("critic_hidden"))
    if name in ("kd", "dkd") and table.get("standardize"):
        return f"{arm}-ls"
    if name == "mimkd":
        term, ls = table.get("logit_term", "kd"), bool(table.get("logit_standardize"))
        if term == "dkd" or ls or table.get("alpha", 1.0) < 1:
            return f"{arm}+{term}{'-ls' if ls else ''}"
    return arm


def method_name(m: str | None) -> str:
    if m and "+" in m:  # MIMKD with a logit term
        base, term = m.split("+", 1)
        return f"{method_name(base)} + {method_name(term)}"
    if m and m.startswith("mimkd-w") and m[len("mimkd-w"):].isdigit():
        return f"MIMKD, {m[len('mimkd-w'):]}-wide critics"
    return METHOD_NAMES.get(m or "", m or "?")


def dataset_name(d: str | None) -> str:
    return DATASET_NAMES.get(d or "", d or "?")


def _num(v: Any, digits: int = 3) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and v != v:  # NaN
            return "–"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def fixed_cell(v: Any, digits: int = 2) -> str:
    """A number with `digits` decimals, "–" where there is none (None, or an empty CSV cell)."""
    return "–" if v is None or v == "" else f"{float(v):.{digits}f}"


P_SHOWN_DOWN_TO = 0.001  # smaller p-values read "< 0.001": finer digits change no reading of a table


def interval_cell(ci: tuple[float, float] | None, digits: int = 2) -> str:
    """A confidence interval of a signed difference, "[-0.12, +0.56]" ("–" when there is none)."""
    return "–" if ci is None else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def p_cell(p: float | None) -> str:
    """A p-value to three decimals, "< 0.001" below that ("–" when there is none)."""
    if p is None:
        return "–"
    return f"< {P_SHOWN_DOWN_TO:g}" if p < P_SHOWN_DOWN_TO else f"{p:.3f}"


def markdown(columns: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; `align` holds "l"/"r" per column (default: right)."""
    align = align or ["r"] * len(columns)
    rule = ["---" if a == "l" else "--:" for a in align]
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join(rule) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(lines) + "\n"


def precision_cell(row: dict) -> str:
    """Storage precision, and the inference precision where it differs ("fp16 → fp32")."""
    store, infer = row.get("storage_precision") or "?", row.get("inference_precision") or "?"
    return store if store == infer else f"{store} → {infer}"


def points_table(points: list[dict]) -> str:
    """The figure's points: one row per student × method × artifact (its fastest measured setting)."""
    seeds = any("seeds" in p for p in points)  # means over seeds (plot.seed_mean_points): how many, ± SD
    cols = ["student", "method", "data", "artifact", "runtime", "precision (stored → computed)", "shape",
            "threads", *(["seeds"] if seeds else []), "median ms", "p90 ms", "p99 ms", "img/s (batch)", "top-1 %",
            "direct-conv. FLOP bound ms (est.)", "% of FP32 bound (est.)", "Pareto"]
    align = ["l"] * 7 + ["r"] * (8 + seeds) + ["l"]
    body = []
    for p in sorted(points, key=lambda p: (p.get("student") or "", p.get("method") or "", p["median_ms"])):
        tp = "–" if not p.get("throughput_ips") else f"{p['throughput_ips']:,.0f} ({p.get('throughput_batch')})"
        body.append([student_name(p.get("student")), method_name(p.get("method")), dataset_name(p.get("dataset")),
                     p.get("artifact"), RUNTIME_NAMES.get(p.get("backend"), p.get("backend")), precision_cell(p),
                     p.get("shape"), p.get("threads"), *([p.get("seeds")] if seeds else []),
                     _with_sd(p["median_ms"], p.get("median_ms_sd"), 3), fixed_cell(p.get("p90_ms"), 3),
                     fixed_cell(p.get("p99_ms"), 3), tp, _with_sd(p.get("accuracy"), p.get("accuracy_sd"), 2),
                     fixed_cell(p.get("bound_ms_est"), 3), fixed_cell(p.get("pct_bound_est"), 0),
                     "yes" if p.get("pareto") else ""])
    return markdown(cols, body, align)


def _with_sd(v: Any, sd: float | None, digits: int) -> str:
    """`v` to `digits` decimals, "± SD" after it when there is one (a mean over seeds)."""
    return fixed_cell(v, digits) + ("" if sd is None or v is None else f" ± {sd:.{digits}f}")


def rows_table(rows: list[dict]) -> str:
    """Every benchmark row (all backends, shapes and thread counts)."""
    cols = ["run", "student", "method", "artifact", "runtime", "precision", "threads", "shape", "median ms",
            "mean ms", "p90 ms", "p99 ms", "min ms", "img/s", "top-1 %", "% bound (est.)", "% bound (sgemm)"]
    align = ["l"] * 8 + ["r"] * 9
    body = [[r.get("run"), student_name(r.get("student")), method_name(r.get("method")), r.get("artifact"),
             RUNTIME_NAMES.get(r.get("backend"), r.get("backend")), precision_cell(r), r.get("threads"), r.get("shape"),
             fixed_cell(r.get("median_ms"), 3), fixed_cell(r.get("mean_ms"), 3), fixed_cell(r.get("p90_ms"), 3),
             fixed_cell(r.get("p99_ms"), 3), fixed_cell(r.get("min_ms"), 3),
             "–" if not r.get("throughput_ips") else f"{r['throughput_ips']:,.0f}", fixed_cell(r.get("accuracy")),
             fixed_cell(r.get("pct_bound_est"), 0), fixed_cell(r.get("pct_bound_sgemm"), 0)] for r in rows]
    return markdown(cols, body, align)


def paper_table(students: Iterable[str]) -> str:
    """The paper's CIFAR-100 top-1 rows for `students` (accuracy only; the paper gives no latency)."""
    body = []
    for s in sorted(set(students)):
        for r in paper_rows(s):
            body.append([student_name(s), r["teacher"], *(fixed_cell(r[m]) for m in ("none", "kd", "crd", "mimkd"))])
    if not body:
        return ""
    return markdown(["student", "teacher", "baseline", "KD", "CRD", "MIMKD"], body, ["l", "l", "r", "r", "r", "r"])
