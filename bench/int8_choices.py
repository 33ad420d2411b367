"""Which INT8 post-training-quantisation settings keep a run's accuracy, on this CPU.

    python -m bench.int8_choices RUN [RUN ...] --data-dir CIFAR10_DATA --out bench/results/int8_choices.md

For each finished run: export the FP32 ONNX once, then quantise it with onnxruntime (static QDQ) and
with NNCF (OpenVINO IR) under the settings below, one at a time, and score every INT8 model on the
whole test split (top-1, top-1 agreement with FP32, max |Δ logits|). One thread per backend. ORT's
"reference kernels" row runs the default INT8 graph with graph optimisation off: QDQ in float, no
integer arithmetic — it separates the quantisation grid from the integer kernels' saturation.
The CPU's VNNI support is printed with the results: without VNNI, u8×s8 pairs are summed into int16
and can clip, which is what `overflow_fix` / `reduce_range` are about.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mimkd_edge.data import load_splits
from mimkd_edge.export.onnx_export import export_onnx
from mimkd_edge.export.quantize import sample_indices
from mimkd_edge.export.quiet import quiet
from mimkd_edge.rundir import load_run
from mimkd_edge.runtime.accuracy import model_inputs
from mimkd_edge.runtime.hardware import parse_cpuinfo


def _ort_logits(path, x, *, optimise=True):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not optimise:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": x[i: i + 500]})[0] for i in range(0, len(x), 500)])


def _ov_logits(model, x):
    import openvino as ov

    c = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    return np.concatenate([c(x[i: i + 500])[0] for i in range(0, len(x), 500)])


class _Reader:
    def __init__(self, data, batch=32):
        self.batches, self.i = [data[i: i + batch] for i in range(0, len(data), batch)], 0

    def get_next(self):
        self.i += 1
        return {"input": self.batches[self.i - 1]} if self.i <= len(self.batches) else None

    def rewind(self):
        self.i = 0


def ort_variants(fp32: Path, work: Path, x_cal, x_test):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre, out = work / "pre.onnx", work / "int8.onnx"
    quant_pre_process(str(fp32), str(pre))
    base = dict(quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    for name, change, optimise in [
            ("ORT full-range weights (per-channel, MinMax)", {}, True),
            ("ORT full-range, reference kernels (no integer arithmetic)", {}, False),
            ("ORT per-tensor weights", {"per_channel": False}, True),
            ("ORT 7-bit weights (reduce_range) — default", {"reduce_range": True}, True)]:
        quantize_static(str(pre), str(out), _Reader(x_cal), **{**base, **change})
        yield name, _ort_logits(out, x_test, optimise=optimise)


def nncf_variants(fp32: Path, calib_sets, x_test):
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    nncf.set_log_level(logging.ERROR)
    perf, mixed = nncf.QuantizationPreset.PERFORMANCE, nncf.QuantizationPreset.MIXED
    for name, n, preset, fix, fast in [
            ("NNCF first-layer fix, fast bias correction (NNCF's defaults)", 300, perf, OverflowFix.FIRST_LAYER, True),
            ("NNCF no overflow fix", 300, perf, OverflowFix.DISABLE, True),
            ("NNCF 7-bit weights everywhere, fast bias correction", 300, perf, OverflowFix.ENABLE, True),
            ("NNCF MIXED preset", 300, mixed, OverflowFix.FIRST_LAYER, True),
            ("NNCF 1000 calibration images", 1000, perf, OverflowFix.FIRST_LAYER, True),
            ("NNCF first-layer fix, full bias correction", 300, perf, OverflowFix.FIRST_LAYER, False),
            ("NNCF 7-bit weights everywhere, full bias correction — default", 300, perf, OverflowFix.ENABLE, False)]:
        data = nncf.Dataset([calib_sets[n][i: i + 1] for i in range(n)])
        q = nncf.quantize(ov.convert_model(str(fp32)), data, preset=preset, subset_size=n, fast_bias_correction=fast,
                          advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix))
        yield name, _ov_logits(q, x_test)


def study(run: Path, data_dir: str | None, work: Path) -> list[dict]:
    loaded = load_run(run)
    splits = load_splits(loaded.recipe.data, data_dir, recorded=loaded.data_source)
    mean, std = tuple(splits.mean), tuple(splits.std)
    fp32 = work / "fp32.onnx"
    export_onnx(loaded.model, fp32, input_size=splits.image_size)
    x_test, y = model_inputs(splits.test.images, mean, std, baked=False), splits.test.labels.numpy()
    calib_sets = {n: model_inputs(splits.train.take(torch.from_numpy(sample_indices(len(splits.train), n))),
                                    mean, std, baked=False) for n in (300, 1000)}
    ref = _ort_logits(fp32, x_test)
    ref_acc = 100 * float((ref.argmax(1) == y).mean())
    rows = []
    with quiet("nncf", "onnxruntime", "root"):
        for name, out in [*ort_variants(fp32, work, calib_sets[300], x_test), *nncf_variants(fp32, calib_sets, x_test)]:
            acc = 100 * float((out.argmax(1) == y).mean())
            rows.append({"run": run.name, "setting": name, "fp32": ref_acc, "int8": acc, "delta": acc - ref_acc,
                         "agreement": 100 * float((out.argmax(1) == ref.argmax(1)).mean()),
                         "max_abs_diff": float(np.abs(out - ref).max())})
            print(f"{run.name:28s} {name:58s} {acc:6.2f} ({acc - ref_acc:+.2f})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data-dir")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as tmp:
            rows += study(run, args.data_dir, Path(tmp))
    cpu = parse_cpuinfo(Path("/proc/cpuinfo").read_text()) if Path("/proc/cpuinfo").is_file() else {}
    vnni = [f for f in cpu.get("isa", []) if "vnni" in f]
    lines = [f"# INT8 settings against FP32, whole test split (bench/int8_choices.py, {time.strftime('%Y-%m-%d')})", "",
             f"CPU: {cpu.get('model', '?')}; VNNI: {', '.join(vnni) or 'no'}. "
             "Command: `python -m bench.int8_choices " + " ".join(str(r) for r in args.runs)
             + (f" --data-dir {args.data_dir}" if args.data_dir else "") + "`", "",
             "| run | setting | FP32 top-1 % | INT8 top-1 % | Δ points | top-1 agreement % | max abs Δ logits |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['setting']} | {r['fp32']:.2f} | {r['int8']:.2f} | {r['delta']:+.2f} | "
              f"{r['agreement']:.1f} | {r['max_abs_diff']:.2f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
