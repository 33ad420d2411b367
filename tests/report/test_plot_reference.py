"""The trade-off figure's reference overlay (`plot --reference DIR`): a committed results folder's points drawn
faded under ours and named in the legend by the folder's caption; without a reference the figure draws what
it drew before, and its title names the data set."""

import json

import matplotlib.axes
import matplotlib.figure
import pytest
from click.testing import CliRunner

from mimkd_edge.cli import main
from mimkd_edge.errors import UserError
from mimkd_edge.report import plot_tradeoff
from mimkd_edge.report.plot import REFERENCE_ALPHA, load_reference
from mimkd_edge.rundir.bench_results import BenchRow

ARTIFACTS = (("onnx-fp32", "onnxruntime", "fp32"), ("openvino-int8", "openvino", "int8"))
# the user's own runs: (student, method) → (latency ms, top-1 %), one seed each
OURS = {("conv4_mp", "none"): (0.30, 55.0), ("conv4_mp", "kd"): (0.31, 56.0), ("conv4_mp", "mimkd"): (0.32, 57.0)}
# the committed reference: (student, method) → per-seed (latency ms, top-1 %)
THEIRS = {("conv4_mp", "kd"): [(0.28, 78.2), (0.29, 78.3)], ("conv4_mp", "mimkd"): [(0.29, 78.8), (0.30, 78.9)],
          ("shufflenetv2", "none"): [(1.4, 82.6)]}


def _row(run, student, method, ms, acc, artifact=ARTIFACTS[0]):
    name, backend, precision = artifact
    return BenchRow(run=run, artifact=name, backend=backend, threads=1, shape="static", batch=1, student=student,
                    method=method, dataset="cifar10", storage_precision=precision, inference_precision=precision,
                    median_ms=ms, p90_ms=ms * 1.1, accuracy=acc, cpu="Our CPU")


def _ours():
    return [_row(f"runs/{s}-{m}", s, m, ms, acc, a) for (s, m), (ms, acc) in OURS.items() for a in ARTIFACTS]


def _reference_folder(tmp_path):
    """A results folder as bench/collect_cpu_results.py leaves one: a README and runs/<name>/bench.json."""
    folder = tmp_path / "results" / "cpu"
    for (student, method), seeds in THEIRS.items():
        for seed, (ms, acc) in enumerate(seeds):
            run = folder / "runs" / f"cpu-{student}-{method}-s{seed}"
            run.mkdir(parents=True)
            rows = [_row(f"runs/cpu/{run.name}", student, method, ms, acc, a).as_dict() for a in ARTIFACTS]
            (run / "bench.json").write_text(json.dumps({"machine": {"cpu": {"model": "Reference CPU"}}, "rows": rows}))
    (folder / "README.md").write_text("# Ref protocol on CIFAR-10, 8 epochs: results (all arms)\n\nNotes.\n")
    return folder


def _drawn(monkeypatch):
    """Record every marker drawn (x, y, alpha), every legend label and the figure's title."""
    markers, labels, titles = [], [], []
    scatter, legend, suptitle = matplotlib.axes.Axes.scatter, matplotlib.figure.Figure.legend, \
        matplotlib.figure.Figure.suptitle

    def record_scatter(self, x, y, *args, **kwargs):
        markers.append((x[0], y[0], kwargs.get("alpha")))
        return scatter(self, x, y, *args, **kwargs)

    def record_legend(self, *args, handles=(), **kwargs):
        labels.extend(h.get_label() for h in handles)
        return legend(self, *args, handles=handles, **kwargs)

    def record_suptitle(self, text, **kwargs):
        titles.append(text)
        return suptitle(self, text, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", record_scatter)
    monkeypatch.setattr(matplotlib.figure.Figure, "legend", record_legend)
    monkeypatch.setattr(matplotlib.figure.Figure, "suptitle", record_suptitle)
    return markers, labels, titles


def test_reference_points_are_drawn_faded_and_labelled(tmp_path, monkeypatch):
    ref = load_reference(_reference_folder(tmp_path))
    assert ref.label == "Ref protocol on CIFAR-10, 8 epochs" and ref.cpu == "Reference CPU"
    markers, labels, titles = _drawn(monkeypatch)
    paths = plot_tradeoff(_ours(), tmp_path / "t.png", references=[ref])

    faded = [m for m in markers if m[2] is not None]
    ours = [m for m in markers if m[2] is None]
    assert len(ours) == len(OURS) * len(ARTIFACTS)  # ours as before, one marker per run × artifact
    assert len(faded) == len(THEIRS) * len(ARTIFACTS)  # theirs: one per student × method × artifact (seed mean)
    assert all(alpha == REFERENCE_ALPHA < 1 for *_, alpha in faded)
    kd = [m for m in faded if m[1] == pytest.approx((78.2 + 78.3) / 2)]
    assert kd and all(x == pytest.approx(0.285) for x, *_ in kd)
    assert markers.index(faded[0]) < markers.index(ours[0])  # drawn first: under ours
    assert any(label.startswith("reference: Ref protocol on CIFAR-10, 8 epochs") and "Reference CPU" in label
               for label in labels)
    assert titles and titles[0].startswith("CIFAR-10: ")
    md = paths["md"].read_text()
    assert "## Reference: Ref protocol on CIFAR-10, 8 epochs" in md and "ShuffleNetV2" in md

    relabelled = load_reference(_reference_folder(tmp_path / "b"), "8-CPU-epoch protocol")
    assert relabelled.label == "8-CPU-epoch protocol"


def test_without_reference_the_figure_is_unchanged(tmp_path, monkeypatch):
    markers, labels, titles = _drawn(monkeypatch)
    paths = plot_tradeoff(_ours(), tmp_path / "t.png")
    assert len(markers) == len(OURS) * len(ARTIFACTS) and all(alpha is None for *_, alpha in markers)
    assert not any(label.startswith("reference") for label in labels)
    assert "## Reference" not in paths["md"].read_text()
    assert titles == ["CIFAR-10: top-1 accuracy vs CPU latency (Our CPU)"]
    markers.clear()
    plot_tradeoff(_ours(), tmp_path / "u.png", title="My title")
    assert titles[-1] == "My title"


def test_cli_reference_and_its_errors(tmp_path, monkeypatch):
    folder = _reference_folder(tmp_path)
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    (run / "bench.json").write_text(json.dumps({"rows": [r.as_dict() for r in _ours()]}))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "fig" / "t.png"
    res = CliRunner().invoke(main, ["plot", str(run), "--reference", str(folder), "--reference-label", "theirs",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "## Reference: theirs" in out.with_suffix(".md").read_text()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no benchmarked run"):
        load_reference(empty)
    res = CliRunner().invoke(main, ["plot", str(run), "--reference", str(empty), "--out", str(out)])
    assert res.exit_code == 2 and "no benchmarked run" in res.output
    res = CliRunner().invoke(main, ["plot", str(run), "--reference-label", "x", "--out", str(out)])
    assert res.exit_code == 2 and "--reference-label" in res.output
