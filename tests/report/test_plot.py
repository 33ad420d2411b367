"""The trade-off figure and its tables, from hand-made benchmark rows (no benchmark needed)."""

import dataclasses

import pytest

from mimkd_edge.errors import UserError
from mimkd_edge.report import pareto_front, plot_tradeoff, points_table, select_points
from mimkd_edge.report.paper import paper_best
from mimkd_edge.rundir.bench_results import BenchRow


def _row(run, student, method, artifact, backend, precision, ms, acc, *, shape="static", threads=1,
         dataset="cifar10"):
    return BenchRow(run=run, student=student, method=method, artifact=artifact, backend=backend,
                    storage_precision=precision, inference_precision=precision, shape=shape, threads=threads,
                    batch=1, median_ms=ms, p90_ms=ms * 1.1, p99_ms=ms * 1.5, accuracy=acc,
                    dataset=dataset, cpu="Test CPU", bound_ms_est=0.24, pct_bound_est=24 / ms)


ROWS = [
    _row("runs/a", "conv4_mp", "none", "torch-fp32", "torch", "fp32", 2.3, 70.1, shape="eager"),
    _row("runs/a", "conv4_mp", "none", "onnx-fp32", "onnxruntime", "fp32", 0.50, 70.1),
    _row("runs/a", "conv4_mp", "none", "onnx-fp32", "onnxruntime", "fp32", 0.55, 70.1, shape="dynamic"),
    _row("runs/a", "conv4_mp", "none", "openvino-int8", "openvino", "int8", 0.30, 69.5),
    _row("runs/b", "conv4_mp", "mimkd", "onnx-fp32", "onnxruntime", "fp32", 0.49, 72.0),
    _row("runs/c", "resnet8x4", "kd", "onnx-fp32", "onnxruntime", "fp32", 4.5, 75.0),
    _row("runs/c", "resnet8x4", "kd", "onnx-fp32", "onnxruntime", "fp32", 9.0, 75.0, threads=2),
]


def test_select_points_takes_the_fastest_setting():
    pts = select_points(ROWS)
    assert len(pts) == 5
    onnx_a = [p for p in pts if p["run"] == "runs/a" and p["artifact"] == "onnx-fp32"]
    assert [p["shape"] for p in onnx_a] == ["static"]
    with pytest.raises(UserError, match="1 thread"):
        select_points(ROWS, threads=4)


def test_pareto_front():
    pts = select_points(ROWS)
    front = pareto_front(pts)
    # fastest first; each next point is slower and strictly more accurate
    assert [(p["run"], p["artifact"]) for p in front] == [("runs/a", "openvino-int8"), ("runs/b", "onnx-fp32"),
                                                          ("runs/c", "onnx-fp32")]
    assert sum(p["pareto"] for p in pts) == 3


def test_pareto_front_ignores_latency_differences_inside_the_spread():
    fast = {**_row("runs/x", "conv4_mp", "none", "openvino-int8", "openvino", "int8", 0.062, 70.0).as_dict(),
            "p90_ms": 0.070}
    slow = {**_row("runs/y", "conv4_mp", "kd", "openvino-int8", "openvino", "int8", 0.066, 74.5).as_dict(),
            "p90_ms": 0.072}
    assert [p["run"] for p in pareto_front([fast, slow])] == ["runs/y"]  # 4 µs apart, spread 6-8 µs: one latency
    tight = [{**fast, "p90_ms": 0.0625}, {**slow, "p90_ms": 0.0665}]  # spread 0.5 µs: 4 µs is a real difference
    assert [p["run"] for p in pareto_front(tight)] == ["runs/x", "runs/y"]


def test_paper_best():
    best = paper_best("conv4_mp")
    assert best["none"] == (66.09, None) and best["mimkd"] == (69.09, "resnet32x4") and best["kd"][0] == 68.04
    assert paper_best("no_such_model") == {}


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])  # paper in its own panel / overlaid
def test_plot_writes_png_svg_md(tmp_path, dataset):
    rows = [dataclasses.replace(r, dataset=dataset) for r in ROWS]
    paths = plot_tradeoff(rows, tmp_path / "t.png", paper=True)
    assert {k: v.suffix for k, v in paths.items()} == {"png": ".png", "svg": ".svg", "md": ".md"}
    for p in paths.values():
        assert p.stat().st_size > 0
    md = paths["md"].read_text()
    assert "Conv-4-MP" in md and "MIMKD" in md and "paper" in md.lower() and "t.png" in md


def test_points_table_marks_pareto():
    pts = select_points(ROWS)
    pareto_front(pts)
    table = points_table(pts)
    assert table.count("\n") == 2 + len(pts) and table.count("| yes |") == 3


def test_an_image_folder_is_named_by_its_folder_in_the_figure():
    from mimkd_edge.report.plot import panel_name

    points = [{"dataset": "imagefolder", "data_name": "digits"}, {"dataset": "cifar10"}]
    assert panel_name("imagefolder", points) == "digits" and panel_name("cifar10", points) == "CIFAR-10"
    assert panel_name("imagefolder", [{"dataset": "imagefolder"}]) == "image folder"  # rows from before the name
