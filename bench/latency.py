"""Batch-1 CPU latency of mimkd-edge's artifacts against the plain ways of running the same model,
in one interleaved run, measured against the FLOP bound.

For each model (random weights: latency does not depend on them, saved as a run directory on the
synthetic data set), the export pipeline builds and proves, once, into a temporary folder, what
`mimkd-edge export --onnx --openvino --int8` makes: an FP32 ONNX file, an FP32 OpenVINO IR, and INT8
versions of both (onnxruntime static QDQ; NNCF), calibrated on the synthetic training images (so their
accuracy means nothing here; only their speed is measured, and no top-1 agreement is asked of them; the
FP32 ones pass the pipeline's parity check). This script keeps only the measurement and its account.
Candidates, all fed the same float32 1×3×32×32 input:

- PyTorch eager, default threads, and PyTorch eager, 1 thread (torch.inference_mode);
- plain onnxruntime: ``InferenceSession(onnx, providers=["CPUExecutionProvider"])``, default options;
- plain OpenVINO: ``Core().compile_model(onnx, "CPU")``, default properties, called as ``compiled(x)``;
- mimkd-edge: runtime.session on the FP32 / INT8 ONNX (onnxruntime) and IR (OpenVINO) artifacts,
  1 thread, static batch 1 (LATENCY hint, 1 stream for OpenVINO);
- where an export-time rewrite applies (export/rewrites.py; ShuffleNetV2's folded channel shuffle and
  aligned branch widths, the INT8 input padded), the same artifacts built from the rewritten graph, as
  `mimkd-edge export` writes them, beside those of the graph as trained (`--no-rewrite`); where several
  apply, also each cumulative step short of all (the fold alone: ExportPlan's `rewrites`), FP32 and
  INT8 at 1 thread, so that each rewrite's own gain is measured.

They run round-robin (the starting candidate rotates), several rounds of a fixed time budget each;
the report gives the median over all calls, p90, the minimum, ratios, and the FLOP bound
2·MACs / peak (peak per core: ISA × measured clock, labelled "estimated"; and the measured sgemm
rate). One more candidate is a torch sgemm (n = 512, 1 thread) timed in the same rounds: on a shared
machine the neighbours slow everything down at times, and the bound at the rate that probe reached
meanwhile says how much of a ratio is the machine's. Also measured: the fixed per-call cost of each
runtime (a graph holding one Identity op), with the session's kept buffers and without; and where the
time goes, by each runtime's own per-node profile (onnxruntime's profiler, OpenVINO's PERF_COUNT).

    python -m bench.latency                      # all four models, about 5 minutes on 2 cores
    python -m bench.latency --models conv4_mp --rounds 3 --seconds 0.2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.latency_report import (OURS_PREFIX, PROBE, PROBE_N, REWRITTEN, REWRITTEN_LABEL, STEP_NAMES, command_line,
                                  fmt, render)
from mimkd_edge.atomic import write_json, write_text
from mimkd_edge.export import ExportPlan, export_run
from mimkd_edge.models import count_macs, create_model
from mimkd_edge.provenance import git_commit, versions
from mimkd_edge.recipe import dump_recipe, parse_recipe
from mimkd_edge.rundir import RunDir, load_run
from mimkd_edge.rundir.checkpoint import save_weights
from mimkd_edge.runtime import hardware
from mimkd_edge.runtime.latency import interleave, load_average
from mimkd_edge.runtime.session import open_session

MODELS = ("conv4", "conv4_mp", "shufflenetv2", "resnet8x4")


def steps(applied: tuple[str, ...]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key suffix, label, rewrites) of each cumulative step short of all of `applied`: with rewrites
    a, b, c the graphs a and a + b, so that each rewrite's gain is the difference of two columns."""
    return [(f"_step{i}", ", " + " + ".join(STEP_NAMES.get(r, r) for r in applied[:i]), applied[:i])
            for i in range(1, len(applied))]


ARTIFACT_KEYS = {"onnx-fp32": "onnx_fp32", "openvino-fp32": "ir_fp32", "onnx-int8": "onnx_int8",
                 "openvino-int8": "ir_int8"}  # the export's artifact names → this study's keys
PARITY_IMAGES = 64  # the synthetic test split each artifact is proven on (random weights: agreement not asked)


def random_run(name: str, folder: Path, calib: int) -> Path:
    """A finished run directory of `name` with random weights (seed 0), 100 classes at its own input size, on
    the synthetic data set: what the export pipeline exports. Latency does not depend on the weights."""
    recipe = parse_recipe({"name": name, "seed": 0, "student": {"model": name}, "method": {"name": "none"},
                           "data": {"dataset": "synthetic", "num_classes": 100, "synthetic_train": max(calib, 1),
                                    "synthetic_test": PARITY_IMAGES}}, "bench.latency")
    torch.manual_seed(0)
    run = RunDir(folder / f"{name}-run")
    run.path.mkdir(parents=True)
    save_weights(run.weights, create_model(name, num_classes=100).state_dict(), metadata={"model": name})
    write_text(run.recipe, dump_recipe(recipe))
    return run.path


def build(name: str, folder: Path, calib: int, int8: bool
          ) -> tuple[torch.nn.Module, dict[str, Path], dict, tuple[str, ...]]:
    """The model (random weights, seed 0) and its artifacts, each built and proven by the export pipeline
    (`mimkd_edge.export.export_run`, as `mimkd-edge export` makes them): those of the graph as trained
    (no rewrite), those of the rewritten graph (keys ending in REWRITTEN: FP32 from the model's rewrites,
    INT8 from those plus the INT8-only ones), and those of each cumulative step (`steps`); and the rewrites
    applied. Keys are kept only for a graph no other form has (a step's FP32 graph that is the fully
    rewritten one is not measured twice). INT8 is calibrated on the synthetic training images: its
    accuracy means nothing here, so no top-1 agreement is asked of it (FP32 parity still is)."""
    run = random_run(name, folder, calib)
    common = {"onnx": True, "openvino": True, "int8": int8, "calib": calib, "parity_images": PARITY_IMAGES,
              "min_agreement": 0.0}
    seconds: dict[str, float] = {}

    def export(suffix: str, **options) -> tuple[dict[str, Path], dict[str, tuple[str, ...]]]:
        """(key → artifact file, key → the rewrites its graph was made with) of one export into folder/name+suffix."""
        t0 = time.perf_counter()
        result = export_run(run, ExportPlan(**common, **options), out=folder / f"{name}{suffix}")
        seconds["export" + suffix] = time.perf_counter() - t0
        for failure in result.failures:
            print(f"{name}{suffix}: {failure.line()}", flush=True)
        if result.manifest is None or "onnx-fp32" not in {a.name for a in result.manifest.artifacts}:
            raise SystemExit(f"{name}{suffix}: the FP32 ONNX artifact failed its check; nothing to measure")
        made, fp32 = result.manifest.artifacts, tuple(result.manifest.rewrites)
        rewrites = {ARTIFACT_KEYS[a.name] + suffix: tuple((a.quantisation or {}).get("rewrites", fp32))
                    for a in made}  # an INT8 artifact's graph has its own (the padded input)
        return {ARTIFACT_KEYS[a.name] + suffix: result.out_dir / a.path for a in made}, rewrites

    paths, _ = export("", rewrite=False)
    rewritten, made_with = export(REWRITTEN)
    fp32_applied = made_with["onnx_fp32" + REWRITTEN]
    applied = made_with.get("onnx_int8" + REWRITTEN, fp32_applied)
    paths.update({k: v for k, v in rewritten.items() if made_with[k]})  # a graph no rewrite changed: as trained's
    for suffix, _, names in steps(applied):
        step_paths, step_made_with = export(suffix, rewrites=names)
        paths.update({k: v for k, v in step_paths.items()
                      if k.startswith(("onnx_int8", "ir_int8")) or len(step_made_with[k]) < len(fp32_applied)})
    return load_run(run).model, paths, {k: round(v, 1) for k, v in seconds.items()}, applied


def identity_onnx(path: Path) -> Path:
    """A graph of one Identity op on a 1×3×32×32 input: what a call costs when the model costs nothing."""
    import onnx
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["logits"])], "identity", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def candidates(model: torch.nn.Module, paths: dict[str, Path], x: np.ndarray, default_threads: int, bf16: bool,
               cores: int, partial: list[tuple[str, str]]):
    """name → (callable, setup or None, description dict with "threads_n", the threads it computes on)."""
    import onnxruntime as ort

    from mimkd_edge.runtime.session import ov_core

    xt = torch.from_numpy(x)
    out: dict[str, tuple] = {}

    def eager():
        with torch.inference_mode():
            model(xt)

    out[f"PyTorch eager ({default_threads} thr, default)"] = (
        eager, lambda: torch.set_num_threads(default_threads),
        {"kind": "plain", "threads": default_threads, "threads_n": default_threads})
    out["PyTorch eager (1 thr)"] = (eager, lambda: torch.set_num_threads(1),
                                    {"kind": "plain", "threads": 1, "threads_n": 1})

    a, b = torch.randn(PROBE_N, PROBE_N), torch.randn(PROBE_N, PROBE_N)
    out[PROBE] = (lambda: torch.mm(a, b), lambda: torch.set_num_threads(1), {"kind": "probe", "threads": 1,
                                                                           "threads_n": 1})

    sess = ort.InferenceSession(str(paths["onnx_fp32"]), providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    out["onnxruntime (defaults)"] = (lambda: sess.run(None, feed), None,
                                     {"kind": "plain", "threads": f"default ({cores}: one per physical core)",
                                      "threads_n": cores})

    compiled = ov_core().compile_model(str(paths["onnx_fp32"]), "CPU")
    props = {k: str(compiled.get_property(k)) for k in ("INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "NUM_STREAMS")}
    props["INFERENCE_PRECISION_HINT"] = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    out["OpenVINO (defaults)"] = (lambda: compiled(x), None,
                                  {"kind": "plain", "threads": props["INFERENCE_NUM_THREADS"],
                                   "threads_n": int(props["INFERENCE_NUM_THREADS"]) or cores,
                                   "properties": props,
                                   "inference_precision": ov_executed_precision(compiled)})

    variants = [("onnx_fp32", "onnxruntime", "ORT FP32", "f32", 1), ("ir_fp32", "openvino", "OpenVINO FP32", "f32", 1),
                ("onnx_int8", "onnxruntime", "ORT INT8", "f32", 1), ("ir_int8", "openvino", "OpenVINO INT8", "f32", 1)]
    if bf16:  # the CPU computes bf16 natively: OpenVINO's own default there; shown apart from FP32
        variants.append(("ir_fp32", "openvino", "OpenVINO FP32 IR, bf16 compute", "bf16", 1))
    if cores >= 2:  # the same artifacts on two cores, to compare with the plain defaults at equal threads
        variants += [("onnx_fp32", "onnxruntime", "ORT FP32", "f32", 2),
                     ("ir_fp32", "openvino", "OpenVINO FP32", "f32", 2)]
    variants += [(key + REWRITTEN, backend, label + REWRITTEN_LABEL, hint, threads)
                 for key, backend, label, hint, threads in variants] + [
        (key + suffix, backend, label + step_label, hint, threads)
        for suffix, step_label in partial
        for key, backend, label, hint, threads in variants if threads == 1 and hint == "f32"]
    for key, backend, label, hint, threads in variants:
        if key not in paths:
            continue
        s = open_session(paths[key], backend, threads=threads, static_batch=1, inference_precision=hint)
        precision = "int8" if "int8" in key else ("bf16" if hint == "bf16" else "fp32")
        out[f"{OURS_PREFIX} {label} ({threads} thr, static)"] = (
            (lambda s=s: s.run(x)), None,
            {"kind": "ours", "threads": threads, "threads_n": threads, "precision": precision,
             "storage_precision": s.precision, "inference_precision": s.inference_precision})
    return out


def ov_executed_precision(compiled) -> str:
    """What the convolutions / matmuls of a compiled OpenVINO model run in (its runtime model)."""
    found = set()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in ("Convolution", "FullyConnected", "MatMul",
                                                                      "GroupConvolution"):
            found.add(info["runtimePrecision"].astype(str))
    return "+".join(sorted(found)) or "?"


DATA_MOVEMENT = ("Reshape", "Transpose", "Split", "Concat", "Reorder", "Slice", "Gather", "Flatten", "Squeeze",
                 "Identity")
QDQ = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}


def profile_ort(path: Path, x: np.ndarray, calls: int = 100) -> dict[str, dict]:
    """onnxruntime's own per-node profile (1 thread, static batch 1), grouped: dense conv, depthwise
    conv, linear, (de)quantisation, data movement (reshape/transpose/split/concat/layout reorders),
    other (pooling, element-wise). Times include the profiler's own cost: read them as shares. Quantised
    convolutions (QLinearConv, NHWC, prepacked weights) do not show their weight shape, so dense and
    depthwise are not told apart there."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    opts.enable_profiling = True
    opts.log_severity_level = 3
    opts.add_free_dimension_override_by_name("batch", 1)
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "prof")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(20):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    # the profile holds the warm-up calls too: count them all and divide by the number of runs
    runs = sum(1 for e in events if e.get("cat") == "Session" and e.get("name") == "model_run") or 20
    groups: dict[str, dict] = {}
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        op, args = e["args"].get("op_name", "?"), e["args"]
        kind, macs = _classify(op, args)
        g = groups.setdefault(kind, {"nodes": 0, "us": 0.0, "macs": 0})
        g["nodes"] += 1
        g["us"] += e["dur"]
        g["macs"] += macs
    total = sum(g["us"] for g in groups.values()) or 1.0
    return {k: {"nodes_per_call": g["nodes"] / runs, "ms_per_call": g["us"] / runs / 1000, "share": g["us"] / total,
                "macs_per_call": g["macs"] / runs} for k, g in sorted(groups.items(), key=lambda kv: -kv[1]["us"])}


def profile_openvino(nodes: list[dict]) -> dict[str, dict]:
    """OpenVINO's own per-node counters (`ov_node_times`) grouped like `profile_ort`: dense conv
    (Convolution), depthwise conv (GroupConvolution), linear, (de)quantise (FakeQuantize), data movement,
    other; per group also the share of its time in AMX kernels (exec type "..._amx_..."), which the INT8
    bound assumes on AMX CPUs. MACs are not summed here (take them from the ONNX profile of the same graph)."""
    groups: dict[str, dict] = {}
    for node in nodes:
        g = groups.setdefault(_classify_ov(node["type"]), {"nodes": 0, "us": 0.0, "amx_us": 0.0})
        g["nodes"] += 1
        g["us"] += node["us"]
        g["amx_us"] += node["us"] if "amx" in node["exec_type"] else 0.0  # e.g. brgconv_avx512_amx_1x1_I8
    total = sum(g["us"] for g in groups.values()) or 1.0
    return {k: {"nodes_per_call": g["nodes"], "ms_per_call": g["us"] / 1000, "share": g["us"] / total,
                "amx_share": g["amx_us"] / (g["us"] or 1.0), "macs_per_call": 0}
            for k, g in sorted(groups.items(), key=lambda kv: -kv[1]["us"])}


def ov_node_times(path: Path, x: np.ndarray, calls: int = 200) -> list[dict]:
    """Every executed node of the compiled IR with its time per call by OpenVINO's counters (whole
    microseconds per node and call: OpenVINO counts in µs; a 10 %-trimmed mean over `calls`) and, for
    convolutions, its MACs and shapes (from the IR before compilation; the runtime keeps their names)."""
    from mimkd_edge.runtime.session import ov_core

    model = ov_core().read_model(str(path))
    model.reshape(list(x.shape))
    shapes = {}
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Convolution", "GroupConvolution"):
            w = list(op.input_value(1).get_partial_shape().to_shape())  # [O, I, kh, kw] / [G, O/G, I/G, kh, kw]
            out = list(op.output(0).get_partial_shape().to_shape())
            per_output = int(np.prod(w[1:] if kind == "Convolution" else w[2:]))
            shapes[op.get_friendly_name()] = {"weight": w, "out": out, "macs": int(np.prod(out)) * per_output}
    compiled = ov_core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "PERFORMANCE_HINT": "LATENCY",
                                                      "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "f32",
                                                      "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(20):
        request.infer({0: x})
    nodes: dict[str, dict] = {}
    times: dict[str, list[float]] = {}
    for call in range(calls):
        request.infer({0: x})
        for node in request.profiling_info:
            if node.status != node.Status.EXECUTED:
                continue
            nodes.setdefault(node.node_name, {"name": node.node_name, "type": node.node_type,
                                              "exec_type": node.exec_type, **shapes.get(node.node_name, {})})
            times.setdefault(node.node_name, [0.0] * calls)[call] = node.real_time.total_seconds() * 1e6
    # A trimmed mean per node (a call where the node did not run counts 0): on a shared machine a few
    # slow calls would otherwise move the sums, and the median of whole µs would lose the fractions.
    keep = slice(calls // 10, calls - calls // 10)
    for name, n in nodes.items():
        n["us"] = float(np.mean(sorted(times[name])[keep]))
    return [n for n in nodes.values() if n["us"] > 0]


def _classify_ov(node_type: str) -> str:
    if node_type == "Convolution":
        return "conv, dense"
    if node_type == "GroupConvolution":
        return "conv, depthwise"
    if node_type in ("FullyConnected", "MatMul"):
        return "linear"
    if node_type == "FakeQuantize":
        return "(de)quantise"
    if any(k in node_type for k in DATA_MOVEMENT):  # VariadicSplit, Concat, Reorder, ...
        return "data movement"
    return "other (pooling, element-wise)"


def _classify(op: str, args: dict) -> tuple[str, int]:
    if op in QDQ:
        return "(de)quantise", 0
    if any(k in op for k in DATA_MOVEMENT):  # also the QLinear* / NCHWc variants
        return "data movement", 0
    if op in ("Gemm", "MatMul", "QGemm", "MatMulInteger", "QLinearMatMul", "FusedGemm"):
        return "linear", 0
    if "Conv" in op:
        shapes = [next(iter(d.values())) for d in args.get("input_type_shape", [])]
        out = [next(iter(d.values())) for d in args.get("output_type_shape", [])]
        if out and len(out[0]) == 4:
            n, co, h, w = out[0]
            weight = next((s for s in shapes[1:] if len(s) == 4 and s[0] == co), None)
            if weight is not None:
                macs = n * co * h * w * weight[1] * weight[2] * weight[3]
                return ("conv, depthwise" if weight[1] == 1 and co > 1 else "conv, dense"), macs
        return "conv (packed weights: dense and depthwise together)", 0
    return "other (pooling, element-wise)", 0


def overhead(folder: Path, rounds: int, seconds: float) -> dict[str, dict]:
    """Per-call cost of each runtime on the Identity graph (plain and mimkd-edge settings)."""
    path = identity_onnx(folder / "identity.onnx")
    x = np.zeros((1, 3, 32, 32), np.float32)
    cands = {}
    for backend, label in (("onnxruntime", "onnxruntime"), ("openvino", "OpenVINO")):
        bound = open_session(path, backend, threads=1, static_batch=1)  # keeps its buffers (runtime.session)
        handed = open_session(path, backend, threads=1)  # each call's arrays handed over, the plain API
        cands[label] = lambda s=bound: s.run(x)
        cands[f"{label}, arrays handed over per call"] = lambda s=handed: s.run(x)
    result = interleave(cands, rounds=rounds, warmup=50, seconds=seconds)
    return {name: result.summary(name) for name in cands}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.3, help="time per candidate per round")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--calib", type=int, default=64, help="random calibration inputs for INT8")
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--out", default="bench/results/latency.md")
    args = ap.parse_args()

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    wall0 = time.perf_counter()
    load_start = load_average()
    default_threads = torch.get_num_threads()
    machine = hardware.machine_info()
    bf16 = hardware.native_bf16()
    cores = machine["cpu"].get("physical_cores") or machine["usable_cpus"] or 1
    est = machine["peak_estimated"]["gflops_per_core"]
    meas = machine["peak_measured"]["gflops_best"]
    print(f"machine: {machine['cpu']['model']}, peak/core {est} GFLOP/s estimated, {meas} measured sgemm", flush=True)

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mimkd-latency-") as tmp:
        folder = Path(tmp)
        over = overhead(folder, args.rounds, min(args.seconds, 0.2))
        print("per-call overhead (ms):", {k: round(v["median_ms"], 4) for k, v in over.items()}, flush=True)
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            print(f"{name}: exporting", flush=True)
            model, paths, export_s, applied = build(name, folder, args.calib, not args.no_int8)
            partial = [(suffix, label) for suffix, label, _ in steps(applied)]
            macs = count_macs(model, model.input_size)
            x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
            cands = candidates(model, paths, x, default_threads, bf16, cores, partial)
            print(f"{name}: timing {len(cands)} candidates × {args.rounds} rounds", flush=True)
            run = interleave({k: v[0] for k, v in cands.items()}, rounds=args.rounds, warmup=args.warmup,
                             seconds=args.seconds, setup={k: v[1] for k, v in cands.items() if v[1]}, pause=0.1)
            torch.set_num_threads(default_threads)
            rows = {}
            for k, (_, _, info) in cands.items():
                s = run.summary(k)
                rows[k] = {**info, **{m: s[m] for m in ("median_ms", "p90_ms", "min_ms", "iters", "rounds")},
                           "round_medians_ms": [round(v, 4) for v in run.round_medians_ms[k]]}
            profiles = {k: profile_ort(paths[k], x) for k in ("onnx_fp32", "onnx_int8", "onnx_fp32" + REWRITTEN,
                                                              "onnx_int8" + REWRITTEN) if k in paths}
            ov_nodes = {k: ov_node_times(paths[k], x) for k in ("ir_fp32", "ir_fp32" + REWRITTEN, "ir_int8",
                                                                "ir_int8" + REWRITTEN) if k in paths}
            ov_profiles = {k: profile_openvino(nodes) for k, nodes in ov_nodes.items()}
            int8_key = "ir_int8" + REWRITTEN if "ir_int8" + REWRITTEN in ov_nodes else "ir_int8"
            probe_gflops = 2 * PROBE_N ** 3 / (rows[PROBE]["median_ms"] * 1e6)
            results[name] = {"macs": macs, "bound_ms_est": hardware.flop_bound_ms(macs, est),
                             "bound_ms_sgemm": hardware.flop_bound_ms(macs, meas),
                             "probe_gflops": round(probe_gflops, 2),
                             "bound_ms_probe": hardware.flop_bound_ms(macs, probe_gflops),
                             "bound_ms_int8_est": hardware.flop_bound_ms(
                                 macs, machine["peak_estimated"].get("int8_gops_per_core")),
                             "bound_ms_bf16_est": hardware.flop_bound_ms(
                                 macs, machine["peak_estimated"].get("bf16_gflops_per_core")),
                             "export_seconds": export_s, "applied": list(applied),
                             "steps": partial, "candidates": rows, "ort_profile": profiles,
                             "ov_profile": ov_profiles,
                             "ov_int8_nodes": {"artifact": int8_key, "nodes": ov_nodes.get(int8_key, []),
                                               "as_trained": ov_nodes.get("ir_int8") if int8_key != "ir_int8"
                                               else None}}
            best = min((r["median_ms"] for r in rows.values() if r["kind"] == "ours"), default=None)
            print(f"{name}: best mimkd-edge {fmt(best)} ms, bound {fmt(results[name]['bound_ms_est'])} ms", flush=True)
            del cands, run

    load_end = load_average()
    report = render(results, machine, over, args, started, load_start, load_end, default_threads,
                    time.perf_counter() - wall0)
    out = Path(args.out)
    write_text(out, report)
    write_json(out.with_suffix(".json"), {"command": command_line(), "started": started, "machine": machine,
                                          "load_average_start": load_start, "load_average_end": load_end,
                                          "versions": versions(), "git_commit": git_commit(),
                                          "per_call_overhead": over, "models": results})
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
