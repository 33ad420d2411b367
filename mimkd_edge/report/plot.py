"""The accuracy-vs-latency figure: top-1 (y, %) against batch-1 CPU latency (x, ms, log scale).

One point per student × method × artifact, at the fastest setting measured for that artifact (over
runtimes and static/dynamic compilation, at one thread count and batch size). Colour says the
method, the marker says the artifact (PyTorch eager, ONNX Runtime / OpenVINO / ncnn / ExecuTorch, FP32 / FP16 /
INT8);
each student is labelled once; the Pareto front (no other point both faster and at least as
accurate, where two latencies closer than their p90 − median spread count as equal: `dominates`) is
the dashed staircase, held to the right edge after its slowest point.

`seed_means=True` draws one point per student × method × artifact instead of one per run: the mean
over its runs (the protocol's seeds), with ±1 SD across seeds as error bars on both axes
(`seed_mean_points`), so a gap between methods is seen against the seed-to-seed spread.

`paper=True` adds the paper's CIFAR-100 top-1 (report/paper.py). The paper publishes no latencies we
could reuse (its Figure 1 was timed on a Xeon Gold 5218 and is not given in numbers), so its points
are drawn hollow at *our* fastest FP32 latency of the same student architecture: only their height
comes from the paper. When our runs are on another data set than CIFAR-100, the paper's points get a
panel of their own (same latency axis) rather than sharing an accuracy axis with a different task.

`references=[load_reference(DIR)]` draws the points of a committed results folder (e.g. bench/results/cpu,
whose run folders hold bench files) faded, under ours: one point per student × method × artifact,
the mean over the folder's seeds, coloured and marked like ours, and named in the legend by the folder's
caption (its README's title up to the first colon, or a label given). The Pareto front stays ours. A
reference folder was benchmarked on its own machine: its latencies compare with ours only as far as the
two CPUs do (the Markdown names its CPU).

Writes OUT.png, OUT.svg and OUT.md (the points as a Markdown table, plus the paper's rows).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..atomic import atomic_write, write_text
from ..errors import UserError
from ..rundir import RunDir
from ..rundir.bench_results import BenchRow, read_bench_machine, read_bench_rows
from .paper import paper_best
from .tables import (RUNTIME_NAMES, dataset_name, method_name, paper_table, points_table, student_name)

METHOD_COLOURS = {"none": "#6b6b6b", "kd": "#1f77b4", "crd": "#2ca02c", "mimkd": "#d62728",
                  "fitnet": "#9467bd", "at": "#8c564b", "vid": "#e377c2"}
_EXTRA_COLOURS = ("#ff7f0e", "#17becf", "#bcbd22", "#7f7f7f")
# (backend, storage precision) → (marker, legend text)
ARTIFACT_MARKERS = {
    ("torch", "fp32"): ("s", "PyTorch eager, FP32"),
    ("onnxruntime", "fp32"): ("o", "ONNX Runtime, FP32"),
    ("openvino", "fp32"): ("D", "OpenVINO, FP32"),
    ("openvino", "fp16"): ("d", "OpenVINO, FP16 weights"),
    ("onnxruntime", "int8"): ("^", "ONNX Runtime, INT8"),
    ("openvino", "int8"): ("v", "OpenVINO, INT8"),
    ("openvino", "bf16"): ("h", "OpenVINO, bf16 compute"),
    ("ncnn", "fp32"): ("P", "ncnn, FP32"),
    ("ncnn", "fp16"): ("p", "ncnn, FP16 weights"),
    ("executorch", "fp32"): ("*", "ExecuTorch (XNNPACK), FP32"),
    ("executorch", "int8"): ("<", "ExecuTorch (XNNPACK), INT8"),
}


THREADS, BATCH = 1, 1  # the setting a figure plots unless told: batch-1 latency on one thread, the edge case


def select_points(rows: list[BenchRow], *, threads: int = THREADS, batch: int = BATCH) -> list[dict]:
    """One point per (run, artifact): its fastest row at `threads` and `batch` (over runtime and shape).
    Points are the rows' fields as a dict, to which the figure adds its own marks (`pareto`)."""
    usable = [r for r in rows if r.median_ms and r.threads == threads and r.batch == batch]
    if not usable:
        have = sorted({(r.threads, r.batch) for r in rows if r.median_ms})
        raise UserError(f"no benchmark rows at {threads} thread(s), batch {batch}; results hold "
                        + (", ".join(f"{t} thread(s)/batch {b}" for t, b in have) or "no rows"))
    best: dict[tuple, BenchRow] = {}
    throughput: dict[tuple, BenchRow] = {}
    for r in usable:
        key = (r.run, r.artifact, r.backend)
        if key not in best or r.median_ms < best[key].median_ms:
            best[key] = r
        if r.throughput_ips and (key not in throughput or r.throughput_ips > throughput[key].throughput_ips):
            throughput[key] = r
    points = []
    for key, r in best.items():
        p = r.as_dict()
        if not r.throughput_ips and key in throughput:  # a static batch-1 session has no throughput row
            p["throughput_ips"] = throughput[key].throughput_ips
            p["throughput_batch"] = throughput[key].throughput_batch
        points.append(p)
    return points


# what makes one point of `seed_mean_points`: runs differing only in seed share all of these
SEED_GROUP = ("student", "method", "dataset", "data_name", "artifact", "backend", "storage_precision",
              "inference_precision")
SEED_AVERAGED = ("median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "accuracy", "throughput_ips", "bound_ms_est",
                 "pct_bound_est", "pct_bound_sgemm")
SEED_SPREAD = ("median_ms", "accuracy")  # the axes: each gets "<key>_sd", the SD across seeds
MARKER_AREA = 60  # pt², the figure's markers
REFERENCE_ALPHA = 0.3  # a reference folder's points: faded, under ours


@dataclass(frozen=True)
class Reference:
    """A committed results folder to draw under our points: its bench rows (method = the run's arm), the
    caption the legend gives it, where it was read from and the machine it was benchmarked on."""

    label: str
    rows: list[BenchRow] = field(repr=False)
    folder: Path
    machine: dict | None = None

    @property
    def cpu(self) -> str | None:
        return (self.machine or {}).get("cpu", {}).get("model") or next((r.cpu for r in self.rows if r.cpu), None)


def load_reference(folder: str | Path, label: str | None = None) -> Reference:
    """The benchmarked runs under `folder` (every run folder holding a bench file, e.g.
    bench/results/cpu/runs/*), each row's method replaced by its run's arm as the protocol reports it.
    The caption: `label`, else the folder's README title up to its first colon (bench/results/cpu: "CPU
    protocol on CIFAR-10, 8 epochs"), else the folder's name; the legend prefixes it with "reference: "."""
    from .protocol import run_arm

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such results folder (--reference takes a folder of benchmarked runs)")
    runs = sorted(d for d in folder.rglob("*") if d.is_dir() and RunDir(d).benched)
    rows = [replace(row, method=run_arm(run)) if (run / "recipe.toml").is_file() else row
            for run in runs for row in read_bench_rows(run)]
    if not rows:
        raise UserError(f"{folder}: no benchmarked run under it (expected benchmarked run folders, "
                        "e.g. bench/results/cpu/runs/*)")
    machine = next((m for m in map(read_bench_machine, runs) if m), None)
    return Reference(label=label or _folder_caption(folder), rows=rows, folder=folder, machine=machine)


def _folder_caption(folder: Path) -> str:
    readme = folder / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].split(":", 1)[0].strip() or folder.name
    return folder.name


def _reference_points(ref: Reference, index: int, threads: int, batch: int) -> list[dict]:
    """One faded point per student × method × artifact of `ref`: the mean over its seeds."""
    try:
        points = seed_mean_points(select_points(ref.rows, threads=threads, batch=batch))
    except UserError as e:
        raise UserError(f"{ref.folder}: {e}") from None
    return [{**p, "reference": index} for p in points if p.get("accuracy") is not None]


def seed_mean_points(points: list[dict]) -> list[dict]:
    """`select_points`' points merged over seeds: one per student × method × artifact (`SEED_GROUP`),
    its numbers the mean over its runs, with "seeds" (how many) and the sample SD across seeds of latency
    and accuracy ("median_ms_sd", "accuracy_sd"; None with one seed). The protocol's runs of one arm
    differ only in seed, so the SD is the seed spread a difference between arms is judged against."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for p in points:
        groups[tuple(p.get(k) for k in SEED_GROUP)].append(p)
    return [_seed_mean(members) for members in groups.values()]


def _seed_mean(members: list[dict]) -> dict:
    out = {**members[0], "run": ", ".join(sorted(m["run"] for m in members)), "seeds": len(members),
           "shape": "/".join(sorted({str(m.get("shape")) for m in members}))}
    for key in SEED_AVERAGED:
        values = [m[key] for m in members if m.get(key) is not None]
        out[key] = statistics.fmean(values) if values else None
        if key in SEED_SPREAD:
            out[f"{key}_sd"] = statistics.stdev(values) if len(values) > 1 else None
    return out


def latency_spread(p: dict) -> float:
    """How far apart two latencies must be to count as different: this point's p90 − median over
    its timed calls (0 when the row has no p90)."""
    p90 = p.get("p90_ms")
    return max(0.0, p90 - p["median_ms"]) if p90 else 0.0


def dominates(a: dict, b: dict) -> bool:
    """`a` beats `b`: at least as accurate, not slower beyond the larger of the two latency spreads,
    and better on one axis (more accurate, or faster by more than that spread). Two latencies within
    each other's spread are one latency: a point a few µs faster but less accurate does not make the
    front on noise."""
    tol = max(latency_spread(a), latency_spread(b))
    if a["accuracy"] < b["accuracy"] or a["median_ms"] > b["median_ms"] + tol:
        return False
    return a["accuracy"] > b["accuracy"] or a["median_ms"] < b["median_ms"] - tol


def pareto_front(points: list[dict]) -> list[dict]:
    """Points no other point dominates (see `dominates`), fastest first; marks them with
    p["pareto"] = True. Points without an accuracy are left out."""
    scored = sorted((p for p in points if p.get("accuracy") is not None),
                    key=lambda p: (p["median_ms"], -p["accuracy"]))
    front = [p for p in scored if not any(dominates(o, p) for o in scored if o is not p)]
    for p in points:
        p["pareto"] = any(p is f for f in front)
    return front


def _colour(method: str, seen: dict[str, str]) -> str:
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    if method not in seen:
        seen[method] = _EXTRA_COLOURS[len(seen) % len(_EXTRA_COLOURS)]
    return seen[method]


def _marker(p: dict) -> tuple[str, str]:
    if p.get("backend") == "openvino" and p.get("inference_precision") == "bf16":
        return "h", "OpenVINO, bf16 compute"
    key = (p.get("backend"), p.get("storage_precision"))
    if key in ARTIFACT_MARKERS:
        return ARTIFACT_MARKERS[key]
    return "X", f"{RUNTIME_NAMES.get(key[0], key[0])}, {str(key[1]).upper()}"


def _outputs(out: str | Path) -> tuple[Path, Path, Path]:
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() in (".png", ".svg", ".md", ".pdf") else out
    return stem.with_suffix(".png"), stem.with_suffix(".svg"), stem.with_suffix(".md")


def _ms_formatter():
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos) -> str:
        if v <= 0:
            return ""
        return f"{v:g}" if v >= 0.01 else f"{v:.0e}"

    return FuncFormatter(fmt)


def _style_latency_axis(ax) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(_ms_formatter())
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="major", color="#dddddd", linewidth=0.7)
    ax.grid(True, which="minor", axis="x", color="#f0f0f0", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _label_students(ax, points: list[dict], *, faded: bool = False) -> None:
    """Each student named once, above and left of its most accurate point (`faded`: a reference's, in grey)."""
    by_student: dict[str, list[dict]] = defaultdict(list)
    for p in points:
        if p.get("accuracy") is not None:
            by_student[p.get("student") or "?"].append(p)
    for student, pts in by_student.items():
        top = max(pts, key=lambda p: (p["accuracy"], -p["median_ms"]))
        ax.annotate(student_name(student), (top["median_ms"], top["accuracy"]), xytext=(-5, 6),
                    textcoords="offset points", ha="right", va="bottom", fontsize=9,
                    fontweight="normal" if faded else "bold", color="#999999" if faded else "#222222")


def _pad_limits(ax, xs: list[float], ys: list[float]) -> None:
    lo, hi = min(xs), max(xs)
    span = math.log10(hi / lo) if hi > lo else 0.0
    margin = max(0.12, 0.08 * span)
    ax.set_xlim(lo / 10 ** (margin + 0.15), hi * 10 ** margin)  # room on the left for the labels
    ylo, yhi = min(ys), max(ys)
    pad = max(1.0, 0.1 * (yhi - ylo))
    ax.set_ylim(ylo - pad, yhi + 1.6 * pad)


def plot_tradeoff(rows: list[BenchRow], out: str | Path, *, paper: bool = False, threads: int = THREADS,
                  batch: int = BATCH, title: str | None = None, machine: dict | None = None, seed_means: bool = False,
                  references: list[Reference] | tuple[Reference, ...] = ()) -> dict[str, Path]:
    """Draw the figure from benchmark rows; returns {"png", "svg", "md"} paths (all written). `seed_means`:
    one point per student × method × artifact, mean ± SD over seeds (`seed_mean_points`), not one per run.
    `references` (`load_reference`): committed results drawn faded under ours, each named in the legend."""
    from matplotlib.figure import Figure

    points = select_points(rows, threads=threads, batch=batch)
    points = seed_mean_points(points) if seed_means else points
    plotted = [p for p in points if p.get("accuracy") is not None]
    if not plotted:
        raise UserError("no benchmark row has a test accuracy to plot (bench without --no-accuracy)")
    front = pareto_front(points)
    ref_pts = [p for i, ref in enumerate(references) for p in _reference_points(ref, i, threads, batch)]
    ours_datasets = sorted({p.get("dataset") or "?" for p in plotted})
    datasets = sorted(set(ours_datasets) | {p.get("dataset") or "?" for p in ref_pts})
    paper_pts = _paper_points(plotted) if paper else []
    separate_paper = bool(paper_pts) and datasets != ["cifar100"]
    panels = datasets + (["paper"] if separate_paper else [])

    width = 5.6 * len(panels) + 2.6
    fig = Figure(figsize=(width, 4.8), dpi=150, layout="constrained")
    axes = fig.subplots(1, len(panels), sharex=True, squeeze=False)[0]
    extra_colours: dict[str, str] = {}
    xs = [p["median_ms"] for p in plotted + ref_pts] + [p["x"] for p in paper_pts]

    for ax, panel in zip(axes, panels, strict=True):
        _style_latency_axis(ax)
        ax.set_xlabel(f"Batch-{batch} latency, median, {threads} thread{'s' if threads > 1 else ''} (ms, log scale)")
        if panel == "paper":
            _draw_paper(ax, paper_pts, extra_colours)
            ax.set_ylabel("Paper's CIFAR-100 top-1 accuracy (%)")
            ax.set_title("Paper (CIFAR-100), at our measured latency", fontsize=10, loc="left")
            _pad_limits(ax, xs, [p["y"] for p in paper_pts])
            continue
        _draw_reference(ax, panel, ref_pts, plotted, extra_colours)
        _draw_ours(ax, panel, plotted, front, paper_pts if not separate_paper else [], xs, extra_colours,
                   ref_pts=ref_pts)
    if paper_pts and separate_paper:
        _label_paper(axes[-1], paper_pts)

    _legend(fig, plotted, paper_pts, extra_colours, ref_pts=ref_pts, references=references)

    cpu = (machine or {}).get("cpu", {}).get("model") or next((p.get("cpu") for p in plotted if p.get("cpu")), None)
    named = ", ".join(panel_name(d, plotted) for d in ours_datasets)
    default_title = f"{named[:1].upper()}{named[1:]}: top-1 accuracy vs CPU latency{f' ({cpu})' if cpu else ''}"
    fig.suptitle(title or default_title, fontsize=11, x=0.01,
                 horizontalalignment="left")

    png, svg, md = _outputs(out)
    png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=150))
    atomic_write(svg, lambda tmp: fig.savefig(tmp, format="svg"))
    text = _markdown(points, paper_pts, png, svg, threads, batch, cpu, machine, paper)
    write_text(md, text + "".join(_reference_markdown(ref, [p for p in ref_pts if p["reference"] == i])
                                  for i, ref in enumerate(references)))
    return {"png": png, "svg": svg, "md": md}


def panel_name(dataset: str, points: list[dict]) -> str:
    """How a figure names a data set: CIFAR's by their names; an image folder by its folder's name
    ("digits"), as "image folder" would say nothing about which."""
    if dataset == "imagefolder":
        names = sorted({p["data_name"] for p in points if p.get("dataset") == dataset and p.get("data_name")})
        if names:
            return ", ".join(names)
    return dataset_name(dataset)


def _draw_reference(ax, panel: str, ref_pts: list[dict], plotted: list[dict], extra_colours: dict[str, str]) -> None:
    """A reference folder's points of this panel, faded and edgeless under ours; its students that ours
    do not show are named in grey."""
    theirs = [p for p in ref_pts if (p.get("dataset") or "?") == panel]
    for p in theirs:
        marker, _ = _marker(p)
        ax.scatter([p["median_ms"]], [p["accuracy"]], marker=marker, s=MARKER_AREA, color=_colour(p.get("method"),
                   extra_colours), edgecolors="none", alpha=REFERENCE_ALPHA, zorder=2)
    ours = {p.get("student") for p in plotted if (p.get("dataset") or "?") == panel}
    _label_students(ax, [p for p in theirs if p.get("student") not in ours], faded=True)


def _reference_markdown(ref: Reference, pts: list[dict]) -> str:
    runs = len({r.run for r in ref.rows})
    return "\n".join(["", f"## Reference: {ref.label}", "",
                      f"Drawn faded under our points: `{ref.folder}`, {runs} benchmarked runs, one point per student "
                      "× method × artifact (the mean over its seeds, column `seeds`), measured on "
                      f"{ref.cpu or 'an unrecorded CPU'}. Its latencies compare with ours as far as the two CPUs do.",
                      "", points_table(pts) if pts else "_No point at this thread count and batch size._", ""])


def _draw_ours(ax, panel: str, plotted: list[dict], front: list[dict], paper_pts: list[dict], xs: list[float],
               extra_colours: dict[str, str], ref_pts: list[dict] = ()) -> None:
    """One data set's panel: our points, the paper's when they share it, labels and the Pareto staircase
    (its limits also hold the panel's reference points, drawn before by `_draw_reference`)."""
    mine = [p for p in plotted if (p.get("dataset") or "?") == panel]
    for p in mine:
        _draw_point(ax, p, extra_colours)
    if paper_pts:
        _draw_paper(ax, paper_pts, extra_colours)
    _label_students(ax, mine)
    name = panel_name(panel, mine + list(ref_pts))
    ax.set_ylabel(f"Top-1 accuracy, {name} test set (%)")
    ax.set_title(f"This work: {name}" if mine else f"Reference only: {name}", fontsize=10, loc="left")
    theirs = [p["accuracy"] for p in ref_pts if (p.get("dataset") or "?") == panel]
    _pad_limits(ax, xs, [p["accuracy"] for p in mine] + theirs + [p["y"] for p in paper_pts])
    panel_front = [p for p in front if (p.get("dataset") or "?") == panel]
    if panel_front:  # a staircase, held to the right edge: beyond it nothing is more accurate
        fx, fy = _staircase(panel_front)
        ax.plot(fx + [ax.get_xlim()[1]], fy + [fy[-1]], linestyle="--", color="black", linewidth=1.0,
                alpha=0.75, zorder=3)


def _draw_point(ax, p: dict, extra_colours: dict[str, str]) -> None:
    """One of our points: its marker (black-edged on the Pareto front); a mean over seeds
    (`seed_mean_points`) also gets ±1 SD bars across seeds on both axes (none with one seed)."""
    marker, _ = _marker(p)
    colour, edge = _colour(p.get("method"), extra_colours), "black" if p.get("pareto") else "white"
    if "seeds" not in p:
        ax.scatter([p["median_ms"]], [p["accuracy"]], marker=marker, s=MARKER_AREA, color=colour, edgecolors=edge,
                   linewidths=0.8, zorder=4)
        return
    bars = {f"{axis}err": None if p.get(key) is None else [p[key]]
            for axis, key in (("x", "median_ms_sd"), ("y", "accuracy_sd"))}
    ax.errorbar([p["median_ms"]], [p["accuracy"]], **bars, fmt=marker, markersize=math.sqrt(MARKER_AREA),
                color=colour, markeredgecolor=edge, markeredgewidth=0.8, ecolor=colour, elinewidth=1.0, capsize=2.5,
                zorder=4)


def _legend(fig, plotted: list[dict], paper_pts: list[dict], extra_colours: dict[str, str], *,
            ref_pts: list[dict] = (), references: list[Reference] | tuple[Reference, ...] = ()) -> None:
    """Legends outside the axes on the right: method (colour), artifact (marker), other marks (each
    reference folder's caption among them)."""
    from matplotlib.lines import Line2D

    methods = sorted({p.get("method") for p in [*plotted, *ref_pts]} | {p["method"] for p in paper_pts},
                     key=lambda m: list(METHOD_COLOURS).index(m) if m in METHOD_COLOURS else 99)
    h_method = [Line2D([], [], marker="o", linestyle="", color=_colour(m, extra_colours), markersize=7,
                       label=method_name(m)) for m in methods]
    kinds = sorted({_marker(p) for p in [*plotted, *ref_pts]},
                   key=lambda k: [v for v in ARTIFACT_MARKERS.values()].index(k)
                   if k in ARTIFACT_MARKERS.values() else 99)
    h_kind = [Line2D([], [], marker=m, linestyle="", color="#444444", markersize=7, label=text) for m, text in kinds]
    h_other = [Line2D([], [], linestyle="--", color="black", linewidth=1.0, label="Pareto front (ours)"),
               Line2D([], [], marker="o", linestyle="", markerfacecolor="#bbbbbb", markeredgecolor="black",
                      markersize=7, label="on the Pareto front")]
    if any("seeds" in p for p in plotted):
        lo, hi = min(p["seeds"] for p in plotted), max(p["seeds"] for p in plotted)
        h_other.append(Line2D([], [], marker="o", linestyle="-", color="#444444", markersize=6,
                              label=f"mean over {lo if lo == hi else f'{lo}–{hi}'} seed{'' if hi == 1 else 's'},\n"
                                    "bars: ±1 SD across seeds"))
    if paper_pts:
        h_other.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="#444444",
                              markersize=8, markeredgewidth=1.4,
                              label="paper's CIFAR-100 top-1,\nat our fastest FP32 latency\n(best teacher per method)"))
    for ref in references:
        h_other.append(Line2D([], [], marker="o", linestyle="", color="#444444", markeredgecolor="none",
                              alpha=REFERENCE_ALPHA, markersize=7, label=reference_caption(ref)))
    header = lambda text: Line2D([], [], linestyle="", marker="", label=text)  # noqa: E731
    handles = [header("method (colour)"), *h_method, header(" "), header("artifact (marker)"), *h_kind,
               header(" "), *h_other]
    legend = fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False,
                        handletextpad=0.4, borderaxespad=0.2)
    for text, handle in zip(legend.get_texts(), handles, strict=True):
        if handle.get_label() in ("method (colour)", "artifact (marker)"):
            text.set_fontweight("bold")
            text.set_x(-18)  # headers start where the markers do


def _staircase(front: list[dict]) -> tuple[list[float], list[float]]:
    """The Pareto front as a step line: each point holds its accuracy until the next, faster-to-slower."""
    xs, ys = [], []
    for i, p in enumerate(front):
        if i:
            xs.append(p["median_ms"])
            ys.append(front[i - 1]["accuracy"])
        xs.append(p["median_ms"])
        ys.append(p["accuracy"])
    return xs, ys


def _paper_points(points: list[dict]) -> list[dict]:
    """The paper's accuracies per plotted student, at our fastest FP32 latency of that student (stored
    and computed in FP32: bf16-computing and quantised artifacts do not count)."""
    fastest: dict[str, float] = {}
    for p in points:
        if p.get("storage_precision") == "fp32" and p.get("inference_precision", "fp32") == "fp32":
            s = p.get("student")
            fastest[s] = min(fastest.get(s, math.inf), p["median_ms"])
    out = []
    for student, x in sorted(fastest.items()):
        for method, (acc, teacher) in paper_best(student).items():
            out.append({"student": student, "method": method, "teacher": teacher, "x": x, "y": acc})
    return out


def _draw_paper(ax, paper_pts: list[dict], extra_colours: dict[str, str]) -> None:
    for p in paper_pts:
        ax.scatter([p["x"]], [p["y"]], marker="o", s=60, facecolors="none",
                   edgecolors=_colour(p["method"], extra_colours), linewidths=1.4, zorder=5)


def _label_paper(ax, paper_pts: list[dict]) -> None:
    by_student: dict[str, list[dict]] = defaultdict(list)
    for p in paper_pts:
        by_student[p["student"]].append(p)
    for student, pts in by_student.items():
        top = max(pts, key=lambda p: p["y"])
        ax.annotate(student_name(student), (top["x"], top["y"]), xytext=(-8, 6), textcoords="offset points",
                    ha="right", va="bottom", fontsize=9, fontweight="bold", color="#222222")


def _markdown(points: list[dict], paper_pts: list[dict], png: Path, svg: Path, threads: int, batch: int,
              cpu: str | None, machine: dict | None, paper: bool) -> str:
    lines = ["# Accuracy vs CPU latency", "",
             f"![accuracy vs latency]({png.name})  (vector: [{svg.name}]({svg.name}))", "",
             f"- CPU: {cpu or 'unknown'}; batch {batch}, {threads} thread(s); latency = median of per-call wall "
             "times after warm-up (p90/p99 beside it).",
             "- One point per student × method × artifact: its fastest setting over runtime and static/dynamic "
             "compilation at this thread count. Accuracy: top-1 of that artifact on that runtime, on the run's "
             "test split.",
             "- FLOP bound = 2·MACs / peak FP32 FLOP/s at one core per thread: the *direct-convolution* bound (MACs "
             "as a direct convolution does them); the peak is *estimated* from the ISA "
             f"and the clock (see {RunDir('.').bench.name}); `% of bound` = bound / median latency "
             "(above 100 % is possible for "
             "INT8 and bf16, which the FP32 peak does not limit, and for Winograd convolutions (ncnn), which do "
             "fewer multiplications). Throughput: the artifact's dynamic session.",
             *(["- Mean over seeds: one point per student × method × artifact, averaged over its runs (seeds, "
                "column `seeds`); error bars and ± are the sample SD across seeds, on both axes (none with one "
                "seed). The Pareto front is drawn through the means."] if any("seeds" in p for p in points) else []),
             "- Pareto: no other point is both faster and at least as accurate; two latencies closer than the "
             "larger of their p90 − median spreads count as equal.",
             f"- Written {time.strftime('%Y-%m-%d %H:%M %Z')}.", ""]
    if machine:
        est = machine.get("peak_estimated") or {}
        meas = machine.get("peak_measured") or {}
        if est.get("gflops_per_core"):
            measured = (f"{meas.get('gflops_best')} GFLOP/s measured (sgemm n={meas.get('n')}, 1 thread)."
                        if meas else "sgemm not measured.")
            load = (f" Load average during the benchmark: {machine.get('load_average_start')} → "
                    f"{machine.get('load_average_end')}." if machine.get("load_average_start") else "")
            lines.insert(-2, f"- Peak FP32 per core: {est['gflops_per_core']} GFLOP/s estimated "
                             f"({est.get('formula')}); {measured}{load}")
    lines += ["## Points", "", points_table(points)]
    if paper:
        lines += ["## The paper's CIFAR-100 top-1 (accuracy only)", "",
                  "The paper reports no latencies we can reuse (its Figure 1 is on an Intel Xeon Gold 5218, not given "
                  "in numbers). In the figure its accuracies are drawn hollow, at our fastest FP32 latency of the same "
                  "student architecture, one per method (best teacher for KD/CRD/MIMKD)."
                  + ("" if not paper_pts or all(p.get("dataset") == "cifar100" for p in points) else
                     " Our runs are on another data set, so they are in a panel of their own."), ""]
        table = paper_table(p["student"] for p in paper_pts)
        lines.append(table or "_None of the plotted students appears in the paper's tables._\n")
    return "\n".join(lines)


def reference_caption(ref: Reference) -> str:
    """The legend's text for a reference folder: "reference: LABEL" and, on a second line, its CPU and
    that its points are seed means."""
    return f"reference: {ref.label}\n(seed means{f', {ref.cpu}' if ref.cpu else ''})"
