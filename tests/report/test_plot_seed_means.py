"""The trade-off figure's seed-mean form: one point per student × method (× artifact), mean over seeds,
±1 SD across seeds as error bars; the default form still draws one marker per run."""

import statistics

import matplotlib.axes
import pytest

from mimkd_edge.report import plot_tradeoff, select_points
from mimkd_edge.report.plot import seed_mean_points
from mimkd_edge.rundir.bench_results import BenchRow

# (student, method) → per-seed (latency ms, top-1 %): three seeds each, one seed for ResNet-8x4
RUNS = {("conv4_mp", "kd"): [(0.50, 78.26), (0.52, 78.29), (0.51, 78.29)],
        ("conv4_mp", "mimkd"): [(0.49, 79.02), (0.53, 78.89), (0.50, 78.56)],
        ("resnet8x4", "kd"): [(4.5, 75.0)]}


def _rows(artifacts=(("onnx-fp32", "onnxruntime", "fp32"),)):
    rows = []
    for (student, method), seeds in RUNS.items():
        for seed, (ms, acc) in enumerate(seeds):
            for artifact, backend, precision in artifacts:
                rows.append(BenchRow(run=f"runs/{student}-{method}-s{seed}", artifact=artifact, backend=backend,
                                     threads=1, shape="static", batch=1, student=student, method=method,
                                     dataset="cifar10", storage_precision=precision, inference_precision=precision,
                                     median_ms=ms, p90_ms=ms * 1.1, accuracy=acc))
    return rows


def test_seed_mean_points_average_and_spread():
    points = {(p["student"], p["method"]): p for p in seed_mean_points(select_points(_rows()))}
    assert set(points) == set(RUNS)
    for key, seeds in RUNS.items():
        ms, acc = zip(*seeds, strict=True)
        p = points[key]
        assert p["seeds"] == len(seeds)
        assert p["median_ms"] == pytest.approx(statistics.fmean(ms))
        assert p["accuracy"] == pytest.approx(statistics.fmean(acc))
        if len(seeds) > 1:
            assert p["accuracy_sd"] == pytest.approx(statistics.stdev(acc))
            assert p["median_ms_sd"] == pytest.approx(statistics.stdev(ms))
        else:
            assert p["accuracy_sd"] is None and p["median_ms_sd"] is None
    two = seed_mean_points(select_points(_rows((("onnx-fp32", "onnxruntime", "fp32"),
                                                ("openvino-int8", "openvino", "int8")))))
    assert len(two) == 2 * len(RUNS)  # artifacts stay apart: the marker says which


def _drawn(monkeypatch):
    """Record our points as drawn: error-bar points (x, y, yerr) and plain markers (x, y)."""
    bars, markers = [], []
    errorbar, scatter = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.scatter

    def record_errorbar(self, x, y, *args, **kwargs):
        bars.append((x[0], y[0], kwargs.get("yerr")))
        return errorbar(self, x, y, *args, **kwargs)

    def record_scatter(self, x, y, *args, **kwargs):
        markers.append((x[0], y[0]))
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", record_errorbar)
    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", record_scatter)
    return bars, markers


def test_seed_means_draw_one_point_per_student_and_method(tmp_path, monkeypatch):
    bars, markers = _drawn(monkeypatch)
    paths = plot_tradeoff(_rows(), tmp_path / "t.png", seed_means=True)
    assert markers == [] and len(bars) == len(RUNS)
    conv4_mp_kd = [b for b in bars if b[0] == pytest.approx(statistics.fmean(ms for ms, _ in RUNS["conv4_mp", "kd"]))]
    assert conv4_mp_kd[0][2] == [pytest.approx(statistics.stdev(acc for _, acc in RUNS["conv4_mp", "kd"]))]
    md = paths["md"].read_text()
    assert "SD across seeds" in md and "| seeds |" in md and " ± " in md


def test_default_still_draws_one_marker_per_run(tmp_path, monkeypatch):
    bars, markers = _drawn(monkeypatch)
    paths = plot_tradeoff(_rows(), tmp_path / "t.png")
    assert bars == [] and len(markers) == sum(map(len, RUNS.values()))
    assert "| seeds |" not in paths["md"].read_text()
