"""The ablation figure: one horizontal bar per MIMKD variant (terms left out, kept alone, KD's loss
added), its test top-1, with the paired protocol runs of the same student and seed (no distillation,
KD, MIMKD with every term) as vertical lines. The bars start at the lowest of those, so a variant's
distance from each reference is what the eye reads; the exact figures are in the ablation table
(`bench.cpu_report.ablation_markdown`, same points)."""

from __future__ import annotations

from pathlib import Path

from bench.cpu_report import ABLATION_KEYS
from mimkd_edge.atomic import atomic_write
from mimkd_edge.report.tables import method_name, student_name

REFERENCE_STYLE = {"none": ("#6b6b6b", ":"), "kd": ("#1f77b4", "--"), "mimkd": ("#d62728", "-")}


def variant_label(weights: dict) -> str:
    """`α 1, λg 0, λl 0.75, λf 1` — the four weights that set a variant, as the paper names them."""
    names = {"alpha": "α", "lambda_global": "λg", "lambda_local": "λl", "lambda_feature": "λf"}
    return ", ".join(f"{names[k]} {weights[k]:g}" for k, _ in ABLATION_KEYS if weights.get(k) is not None)


def plot_ablation(points: list[dict], out: str | Path, *, title: str | None = None) -> Path:
    """Draw `cpu_report.ablation_points` (one student and seed) to OUT (.png); returns the path."""
    from matplotlib.figure import Figure

    if not points:
        raise ValueError("no ablation runs to plot")
    keys = {(p["student"], p["seed"]) for p in points}
    if len(keys) != 1:
        raise ValueError(f"one student and seed per figure, got {sorted(keys)}")
    student, seed = next(iter(keys))
    refs = {m: a for m, a in points[0]["reference"].items() if a is not None}
    accs = [p["acc"] for p in points]
    low = min([*accs, *refs.values()]) - 0.5
    high = max([*accs, *refs.values()]) + 0.4

    ordered = points[::-1]  # best on top
    fig = Figure(figsize=(7.6, 0.42 * len(points) + 1.6), dpi=150, layout="constrained")
    ax = fig.subplots()
    ys = range(len(ordered))
    ax.barh(list(ys), [p["acc"] - low for p in ordered], left=low, color="#f4a582", edgecolor="#b2182b", height=0.6)
    for y, p in zip(ys, ordered, strict=True):
        ax.text(p["acc"] + 0.03, y, f"{p['acc']:.2f}", va="center", fontsize=8)
    ax.set_yticks(list(ys), [variant_label(p["weights"]) for p in ordered], fontsize=8)
    for method, acc in refs.items():
        colour, style = REFERENCE_STYLE.get(method, ("#000000", "-."))
        ax.axvline(acc, color=colour, linestyle=style, linewidth=1.2,
                   label=f"{method_name(method)} (protocol, seed {seed}): {acc:.2f}")
    ax.set_xlim(low, high)
    ax.set_xlabel("Test top-1 after the protocol's epochs (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title or f"MIMKD ablation, {student_name(student)}, seed {seed} (one run per bar)",
                 fontsize=10, loc="left")
    png = Path(out).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=150))
    return png
