"""The deployment choice: per precision, the fastest measured artifact that keeps FP32 accuracy."""

from mimkd_edge.rundir.bench_results import BenchRow
from mimkd_edge.runtime.choice import choose_deployment


def row(artifact, backend, ms, acc, *, threads=1, shape="static", precision=None, computed=None):
    precision = precision or ("int8" if "int8" in artifact else "fp32")
    computed = computed or ("bf16" if artifact.endswith("@bf16") else precision)
    return BenchRow(run="r", artifact=artifact, backend=backend, threads=threads, shape=shape, batch=1,
                    storage_precision=precision, inference_precision=computed, median_ms=ms, accuracy=acc)


def test_fastest_fp32_wins_across_backends_and_shapes():
    rows = [row("onnx-fp32", "onnxruntime", 0.30, 80.0), row("onnx-fp32", "onnxruntime", 0.25, 80.0, shape="dynamic"),
            row("openvino-fp32", "openvino", 0.28, 80.0), row("torch-fp32", "torch", 0.10, 80.0, shape="eager")]
    (fp32,) = choose_deployment(rows)
    assert (fp32.artifact, fp32.backend, fp32.median_ms) == ("onnx-fp32", "onnxruntime", 0.25)
    assert "openvino-fp32 on openvino 0.280 ms" in fp32.why and "torch" not in fp32.why


def test_the_choice_spans_all_four_runtimes_per_precision():
    rows = [row("onnx-fp32", "onnxruntime", 0.30, 80.0), row("openvino-fp32", "openvino", 0.28, 80.0),
            row("ncnn-fp32", "ncnn", 0.18, 80.0), row("executorch-fp32", "executorch", 0.31, 80.0),
            row("ncnn-fp16", "ncnn", 0.17, 80.0, precision="fp16", computed="fp32"),
            row("onnx-int8", "onnxruntime", 0.15, 79.9), row("openvino-int8", "openvino", 0.14, 79.9),
            row("executorch-int8", "executorch", 0.11, 79.8)]
    fp32, int8 = choose_deployment(rows)
    assert (fp32.artifact, fp32.backend) == ("ncnn-fp16", "ncnn")  # FP16 weights compute in f32: the fp32 class
    assert "ncnn-fp32 on ncnn 0.180 ms" in fp32.why and "executorch-fp32 on executorch" in fp32.why
    assert (int8.artifact, int8.backend) == ("executorch-int8", "executorch")
    slower = [r for r in rows if r.artifact != "executorch-int8"] + [row("executorch-int8", "executorch", 0.11, 79.0)]
    assert choose_deployment(slower)[1].artifact == "openvino-int8"  # 1 point below FP32: not a deployment


def test_an_int8_artifact_that_loses_accuracy_is_not_chosen():
    rows = [row("onnx-fp32", "onnxruntime", 0.30, 80.0), row("onnx-int8", "onnxruntime", 0.10, 79.0),
            row("openvino-int8", "openvino", 0.15, 79.8)]
    fp32, int8 = choose_deployment(rows)
    assert (int8.artifact, int8.backend) == ("openvino-int8", "openvino")
    assert "left out for accuracy" in int8.why and "onnx-int8 on onnxruntime" in int8.why
    assert fp32.artifact == "onnx-fp32"
    worse = [rows[0], row("onnx-int8", "onnxruntime", 0.10, 79.0), row("openvino-int8", "openvino", 0.1, None)]
    assert [c.precision for c in choose_deployment(worse)] == ["fp32"]  # unmeasured accuracy does not qualify


def test_the_fewest_threads_are_compared():
    rows = [row("onnx-fp32", "onnxruntime", 0.30, 80.0), row("onnx-fp32", "onnxruntime", 0.12, 80.0, threads=2),
            row("openvino-fp32", "openvino", 0.35, 80.0)]
    (fp32,) = choose_deployment(rows)
    assert (fp32.artifact, fp32.threads, fp32.median_ms, fp32.compute) == ("onnx-fp32", 1, 0.30, "f32")
    assert choose_deployment([row("torch-fp32", "torch", 1.0, 80.0, shape="eager")]) == []


def test_bf16_compute_is_its_own_class_and_must_keep_accuracy():
    """An IR run with OpenVINO's bf16 hint computes differently: it never stands for FP32, it is chosen
    as bf16 (with the hint to open it with) only when its own accuracy is within the drop of FP32."""
    fp32_rows = [row("onnx-fp32", "onnxruntime", 0.30, 80.0), row("openvino-fp32", "openvino", 0.35, 80.0)]
    fp32, bf16 = choose_deployment(fp32_rows + [row("openvino-fp32@bf16", "openvino", 0.05, 79.8),
                                                row("openvino-fp16@bf16", "openvino", 0.06, 79.9, precision="fp16")])
    assert (fp32.artifact, fp32.compute) == ("onnx-fp32", "f32")
    assert (bf16.precision, bf16.artifact, bf16.backend, bf16.compute) == ("bf16", "openvino-fp32", "openvino", "bf16")
    assert [c.precision for c in choose_deployment(fp32_rows + [row("openvino-fp32@bf16", "openvino", 0.05, 79.0)])] \
        == ["fp32"]  # 1 point below FP32
    assert [c.precision for c in choose_deployment(fp32_rows + [row("openvino-fp32@bf16", "openvino", 0.05, None)])] \
        == ["fp32"]  # accuracy not measured
    fallback = row("openvino-fp32@bf16", "openvino", 0.05, 80.0, computed="fp32")  # hint given, f32 computed
    assert [(c.precision, c.artifact) for c in choose_deployment(fp32_rows + [fallback])] == [("fp32", "onnx-fp32")]


def test_rows_of_another_cpu_or_an_older_file_do_not_decide():
    from dataclasses import replace

    from mimkd_edge.runtime.choice import current_rows

    now = [replace(row("onnx-fp32", "onnxruntime", 0.30, 80.0), cpu="A", sha256="h1"),
           replace(row("openvino-fp32", "openvino", 0.35, 80.0), cpu="A", sha256="h2")]
    stale = [replace(row("openvino-fp32", "openvino", 0.10, 80.0, shape="dynamic"), cpu="B", sha256="h2"),
             replace(row("onnx-fp32", "openvino", 0.05, 80.0), cpu="A", sha256="old")]
    kept = current_rows(now + stale, cpu="A", hashes={"h1", "h2"})
    assert kept == now
    (fp32,) = choose_deployment(kept)
    assert (fp32.artifact, fp32.backend, fp32.sha256) == ("onnx-fp32", "onnxruntime", "h1")
