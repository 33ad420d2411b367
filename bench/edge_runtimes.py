"""Batch-1, 1-thread latency of the zoo's edge students on every runtime the toolchain exports to —
ONNX Runtime, OpenVINO, ncnn, ExecuTorch (XNNPACK) — FP32 and INT8, in one interleaved run per student.

A client of the library's public API only. Each student is a finished run made by the trainer (the
synthetic 32×32 10-class set, one short epoch: latency does not depend on the weights), exported by
`mimkd_edge.export.export_run` with every artifact proven as `mimkd-edge export` proves it (FP32 parity
≤ 1e-4 against PyTorch, INT8 top-1 agreement ≥ 90 %; a failed artifact is not published and is listed).
Each published artifact is opened with `mimkd_edge.runtime.open_session` (1 thread, static batch 1, as
`bench` measures) and all of a student's sessions are timed round-robin by
`mimkd_edge.runtime.latency.interleave`; each ratio is to the faster of ONNX Runtime and OpenVINO at the
same precision, timed in the same rounds. Also timed, interleaved: each runtime's fixed cost per call, on a
graph of one cheap op built by the export package's converters. The bound is the direct-convolution FLOP bound
(2·MACs / estimated FP32 peak of one core; `runtime.hardware`): a Winograd kernel can run below it.

With `--accuracy-run RUN` (repeatable), a copy of a committed CIFAR-10 run is exported with every format
and INT8 (the data: --data-dir or MIMKD_DATA) and its artifacts' test accuracies are tabulated against
FP32: the check that INT8 keeps accuracy on real images.

    python -m bench.edge_runtimes                                     # build (once) and measure
    python -m bench.edge_runtimes --models conv4_mp --rounds 3 --seconds 0.05
    python -m bench.edge_runtimes --measure none --accuracy-run bench/results/cpu/runs/cpu-conv4_mp-none-s0
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mimkd_edge.atomic import write_json, write_text
from mimkd_edge.engine.trainer import fit
from mimkd_edge.export import ExportPlan, export_run
from mimkd_edge.export.executorch_export import export_pte
from mimkd_edge.export.ncnn_export import export_ncnn
from mimkd_edge.export.onnx_export import export_onnx
from mimkd_edge.export.openvino_export import onnx_to_ir
from mimkd_edge.models import create_model
from mimkd_edge.models.cost import count_macs
from mimkd_edge.provenance import git_commit, versions
from mimkd_edge.recipe import parse_recipe
from mimkd_edge.rundir import RunDir, load_verified
from mimkd_edge.runtime import hardware, open_session
from mimkd_edge.runtime.latency import interleave, load_average

MODELS = ("conv4", "conv4_mp", "shufflenetv2", "mobilenetv2", "resnet8x4")
NAMES = {"conv4": "Conv-4", "conv4_mp": "Conv-4-MP", "shufflenetv2": "ShuffleNetV2 (rewritten)",
         "mobilenetv2": "MobileNetV2", "resnet8x4": "ResNet-8x4"}
BASELINES = ("onnxruntime", "openvino")
EDGE = ("ncnn", "executorch")
RUNTIME_NAMES = {"onnxruntime": "ORT", "openvino": "OpenVINO", "ncnn": "ncnn", "executorch": "ExecuTorch"}
PLAN = ExportPlan(onnx=True, openvino=True, ncnn=True, executorch=True, int8=True)


def recipe_table(model: str) -> dict:
    """One short epoch on the synthetic set: a finished run to export (its weights barely trained)."""
    return {"name": f"edge-{model}", "seed": 0,
            "data": {"dataset": "synthetic", "num_classes": 10, "synthetic_train": 640, "synthetic_test": 512},
            "student": {"model": model}, "method": {"name": "none"},
            "train": {"epochs": 1, "batch_size": 64, "lr": 0.05, "milestones": [1], "device": "cpu"}}


def built(work: Path, model: str, say) -> Path:
    """The run of `model` under `work`, trained and exported once (a later call re-uses both)."""
    run = work / model
    if not RunDir(run).finished:
        say(f"{model}: training one synthetic epoch")
        fit(parse_recipe(recipe_table(model), f"edge-{model}"), run)
    if not RunDir(run).exported:
        say(f"{model}: exporting (ONNX, OpenVINO, ncnn, ExecuTorch; FP32 and INT8)")
        result = export_run(run, PLAN, threads=1, progress=lambda m: say(f"{model}: {m}"))
        for failure in result.failures:
            say(f"{model}: {failure.line()}")
    return run


def measure(run: Path, model: str, rounds: int, seconds: float, warmup: int) -> dict:
    """Every proven artifact of `run` timed in one interleaved run; the manifest's proofs beside."""
    export = RunDir(run).export
    manifest = load_verified(export)
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    sessions = {a.name: open_session(export / a.path, a.backend, threads=1, static_batch=1)
                for a in manifest.artifacts}
    timed = interleave({name: (lambda s=s: s.run(x)) for name, s in sessions.items()}, rounds=rounds,
                       seconds=seconds, warmup=warmup, pause=0.05)
    artifacts = {}
    for a in manifest.artifacts:
        s = timed.summary(a.name)
        artifacts[a.name] = {"backend": a.backend, "precision": a.storage_precision,
                             "inference_precision": sessions[a.name].inference_precision,
                             "median_ms": s["median_ms"], "p90_ms": s["p90_ms"], "min_ms": s["min_ms"],
                             "median_of_round_medians_ms": s["median_of_round_medians_ms"], "calls": s["iters"],
                             "parity_max_abs_diff": a.parity["max_abs_diff"],
                             "top1_agreement": a.parity["top1_agreement"], "test_accuracy": a.test_accuracy}
    return {"model": model, "macs": count_macs(create_model(model, num_classes=10), 32), "artifacts": artifacts,
            "failed": [f["name"] + ": " + f["reason"] for f in manifest.failed], "rewrites": manifest.rewrites}


class GlobalPool(torch.nn.Module):
    """A graph of one cheap op (a 32×32 mean per channel): its latency is what a runtime costs per call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def per_call_cost(work: Path, rounds: int, seconds: float, warmup: int) -> dict[str, dict]:
    """Each runtime's fixed cost per call through its session (1 thread, static batch 1), interleaved."""
    folder = work / "per-call"
    folder.mkdir(parents=True, exist_ok=True)
    model, meta = GlobalPool().eval(), {"precision": "fp32", "input_size": "[3, 32, 32]"}
    onnx = folder / "pool.onnx"
    export_onnx(model, onnx, input_size=32, exporter="torchscript")
    paths = {"onnxruntime": onnx, "openvino": onnx_to_ir(onnx, folder / "pool.xml")[0],
             "ncnn": export_ncnn(model, folder / "pool.ncnn.param", input_shape=(3, 32, 32), fp16=False,
                                 metadata=meta)[0],
             "executorch": export_pte(model, folder / "pool.pte", input_shape=(3, 32, 32), metadata=meta)[0]}
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    sessions = {b: open_session(p, b, threads=1, static_batch=1) for b, p in paths.items()}
    timed = interleave({b: (lambda s=s: s.run(x)) for b, s in sessions.items()}, rounds=rounds, seconds=seconds,
                       warmup=warmup, pause=0.05)
    return {b: {k: timed.summary(b)[k] for k in ("median_ms", "p90_ms", "min_ms")} for b in sessions}


def ratios(result: dict) -> dict[str, dict]:
    """Per precision: the best of ORT/OpenVINO, and each artifact's median over it."""
    out = {}
    for precision in ("fp32", "int8"):
        arts = {n: a for n, a in result["artifacts"].items() if a["precision"] == precision}
        base = [a["median_ms"] for a in arts.values() if a["backend"] in BASELINES]
        if not base:
            continue
        best = min(base)
        out[precision] = {"best_baseline_ms": best, "ratio": {n: a["median_ms"] / best for n, a in arts.items()}}
    return out


def report(results: list[dict], machine: dict, command: str, started: float, loads: tuple,
           per_call: dict[str, dict]) -> str:
    est = machine["peak_estimated"]
    lines = ["# Edge runtimes: ncnn and ExecuTorch beside ONNX Runtime and OpenVINO (batch 1, 1 thread)", "",
             f"- Command: `{command}` (from the repository root)",
             f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; wall time {(time.time() - started) / 60:.1f} min; "
             f"git {git_commit()}",
             f"- CPU: {machine['cpu']['model']}, {machine['usable_cpus']} usable CPU(s), ISA "
             f"{' '.join(machine['cpu']['isa'])}; FP32 peak per core {est['gflops_per_core']} GFLOP/s estimated "
             f"({est.get('formula')})",
             f"- Load average: {loads[0]} at start, {loads[1]} at end",
             "- " + ", ".join(f"{k} {v}" for k, v in versions().items() if v and k not in ("python", "mimkd-edge")),
             "- Protocol: each student's proven artifacts (export_run: ONNX, OpenVINO IR, ncnn, ExecuTorch; FP32 and "
             "INT8 from 300 calibration images) opened with runtime.session at 1 thread, static batch 1, timed "
             "round-robin by runtime.latency.interleave; medians over all calls of all rounds. `ratio` = median / "
             "the faster of ORT and OpenVINO at the same precision. `× bound` = median / the direct-convolution FLOP "
             "bound (2·MACs / estimated FP32 peak of one core); Winograd (ncnn) does fewer multiplications and can "
             "go below 1. Weights: one synthetic epoch (latency does not depend on them; the accuracies are of "
             "the synthetic test split, shown only as the gates' record).", ""]
    lines += ["## Fixed per-call cost (a graph of one mean over the image, 1 thread, static batch 1)", "",
              "| runtime | median µs | p90 µs | min µs |", "|---|--:|--:|--:|",
              *[f"| {RUNTIME_NAMES[b]} | {c['median_ms'] * 1000:.1f} | {c['p90_ms'] * 1000:.1f} | "
                f"{c['min_ms'] * 1000:.1f} |" for b, c in per_call.items()], ""]
    lines += ["## Ratio to the best of ORT / OpenVINO (median ms in brackets)", "",
              "| model | precision | best ORT/OV ms | ORT | OpenVINO | ncnn | ExecuTorch |",
              "|---|---|--:|--:|--:|--:|--:|"]
    for r in results:
        for precision, rat in ratios(r).items():
            cells = []
            for backend in ("onnxruntime", "openvino", "ncnn", "executorch"):
                name = next((n for n, a in r["artifacts"].items() if a["backend"] == backend
                             and a["precision"] == precision), None)
                cells.append("–" if name is None else
                             f"{rat['ratio'][name]:.2f} ({r['artifacts'][name]['median_ms']:.3f})")
            lines.append(f"| {NAMES[r['model']]} | {precision.upper()} | {rat['best_baseline_ms']:.3f} | "
                         + " | ".join(cells) + " |")
    lines += ["", "## Every artifact", "",
              "| model | artifact | runtime | stored → computed | median ms | p90 ms | min ms | "
              "× FP32 direct-conv. bound | parity max abs diff | top-1 agreement % |",
              "|---|---|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in results:
        bound = hardware.flop_bound_ms(r["macs"], est["gflops_per_core"])
        for name, a in sorted(r["artifacts"].items(), key=lambda kv: (kv[1]["precision"], kv[1]["median_ms"])):
            lines.append(f"| {NAMES[r['model']]} | {name} | {RUNTIME_NAMES[a['backend']]} | {a['precision']} → "
                         f"{a['inference_precision']} | {a['median_ms']:.3f} | {a['p90_ms']:.3f} | {a['min_ms']:.3f} | "
                         f"{a['median_ms'] / bound:.2f} | {a['parity_max_abs_diff']:.2g} | {a['top1_agreement']:.1f} |")
        for failed in r["failed"]:
            lines.append(f"| {NAMES[r['model']]} | not published: {failed} | | | | | | | | |")
    return "\n".join(lines) + "\n"


def accuracy_table(run: Path, work: Path, data_dir: str | None, say) -> dict:
    """A copy of committed run `run` exported with every format and INT8; its artifacts' test accuracies."""
    copy = work / "accuracy" / run.name
    if not RunDir(copy).exported:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "bench.json"))
        result = export_run(copy, PLAN, data_dir=data_dir, progress=lambda m: say(f"{run.name}: {m}"))
        for failure in result.failures:
            say(f"{run.name}: {failure.line()}")
    manifest = load_verified(RunDir(copy).export)
    return {"run": str(run), "pytorch_test_accuracy": manifest.pytorch["test_accuracy"],
            "artifacts": {a.name: {"test_accuracy": a.test_accuracy, "top1_agreement": a.parity["top1_agreement"]}
                          for a in manifest.artifacts},
            "failed": [f["name"] + ": " + f["reason"] for f in manifest.failed]}


def accuracy_report(tables: list[dict]) -> str:
    lines = ["", "## INT8 accuracy on committed CIFAR-10 runs (test split, 10,000 images)", "",
             "| run | PyTorch FP32 % | artifact | test top-1 % | Δ vs PyTorch FP32 (points) | top-1 agreement % |",
             "|---|--:|---|--:|--:|--:|"]
    for t in tables:
        for name, a in t["artifacts"].items():
            delta = a["test_accuracy"] - t["pytorch_test_accuracy"]
            lines.append(f"| {Path(t['run']).name} | {t['pytorch_test_accuracy']:.2f} | {name} | "
                         f"{a['test_accuracy']:.2f} | {delta:+.2f} | {a['top1_agreement']:.1f} |")
        for failed in t["failed"]:
            lines.append(f"| {Path(t['run']).name} | | not published: {failed} | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--work", type=Path, default=Path("runs/edge-runtimes"), help="runs and exports (re-used)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/edge_runtimes"), help="OUT.md and OUT.json")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=0.1, help="time per candidate per round")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--measure", choices=("all", "none"), default="all", help="none: build and check accuracy only")
    ap.add_argument("--accuracy-run", type=Path, action="append", default=[],
                    help="committed CIFAR-10 run (repeatable)")
    ap.add_argument("--data-dir", help="CIFAR-10 data for --accuracy-run (else MIMKD_DATA / the recipe's)")
    args = ap.parse_args(argv)
    command = "python -m bench.edge_runtimes " + shlex.join(argv if argv is not None else sys.argv[1:])

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started, load_start = time.time(), load_average()
    runs = {model: built(args.work, model, say) for model in args.models}
    tables = [accuracy_table(run, args.work, args.data_dir, say) for run in args.accuracy_run]
    results, machine, per_call = [], None, {}
    if args.measure == "all":
        machine = hardware.machine_info(sgemm=False)
        load_start = load_average()
        say("per-call cost of each runtime")
        per_call = per_call_cost(args.work, args.rounds, args.seconds, args.warmup)
        for model, run in runs.items():
            say(f"{model}: measuring")
            results.append(measure(run, model, args.rounds, args.seconds, args.warmup))
    text = report(results, machine, command, started, (load_start, load_average()), per_call) if machine else \
        f"# Edge runtimes\n\n- Command: `{command}`\n"
    text += accuracy_report(tables) if tables else ""
    write_text(args.out.with_suffix(".md"), text)
    write_json(args.out.with_suffix(".json"), {"command": command, "machine": machine, "per_call": per_call,
                                               "results": results, "accuracy": tables, "versions": versions()})
    say(f"wrote {args.out.with_suffix('.md')} and .json")
    print(json.dumps([{m["model"]: ratios(m)} for m in results], indent=1))


if __name__ == "__main__":
    main()
