"""Which artifact to deploy: per precision, the fastest one measured on this CPU that keeps accuracy.

A run's benchmark measures every exported artifact on every backend that can run it (an FP32 ONNX
file on ONNX Runtime and on OpenVINO, an IR on OpenVINO, an ncnn graph on ncnn, a .pte program on
ExecuTorch). Which is fastest depends on the model
and the CPU — on the 2-core machines here ORT won for some students and OpenVINO for others — so
the product does not fix a backend per format: it picks, per precision class, the artifact and
backend with the lowest median latency at batch 1 (one image at a time, the edge case) and the fewest
threads measured on the CPU the benchmark ran on, among those whose
test accuracy is within `max_drop` points of the best FP32 artifact's (a quantised graph that loses
accuracy is not a deployment, however fast). The choice and the figures behind it are recorded in the
run's bench file; `mimkd-edge predict RUN` runs it.

Precision classes: fp32 (FP32 and FP16 files, ncnn's too: both compute in f32), int8, and bf16 — an
FP32/FP16 IR that OpenVINO runs with its bf16 compute hint (bench label "...@bf16", measured where the CPU
computes bf16 natively; a row counts only if OpenVINO reports computing in bf16). bf16 and int8
change the arithmetic, so they must show their own measured accuracy within `max_drop` points of
FP32; the choice records the hint (`compute`) and `predict` opens the artifact with it. Left out:
the PyTorch eager row (not a deployable artifact).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..rundir.bench_results import BenchRow
from .backends import CHOICE_PRECISIONS

MAX_ACCURACY_DROP = 0.5  # points of top-1 an artifact may lose against the best FP32 one
PRECISION_CLASS = {"fp32": "fp32", "fp16": "fp32", "int8": "int8"}  # stored → computed (an FP16 IR computes f32)
BF16_SUFFIX = "@bf16"  # bench label of an IR run with OpenVINO's bf16 compute hint (runtime.artifacts)


@dataclass(frozen=True)
class DeployChoice:
    precision: str  # "fp32" | "bf16" | "int8": what the kernels compute
    artifact: str  # the manifest's artifact name, e.g. "onnx-int8"
    backend: str  # "onnxruntime" | "openvino" | "ncnn" | "executorch"
    median_ms: float
    threads: int
    batch: int
    accuracy: float | None
    sha256: str | None  # the artifact file measured: `predict RUN` refuses another
    why: str
    compute: str = "f32"  # OpenVINO's inference precision hint to open it with ("bf16" for the bf16 class)

    def as_dict(self) -> dict:
        return asdict(self)


def choose_deployment(rows: list[BenchRow], max_drop: float = MAX_ACCURACY_DROP) -> list[DeployChoice]:
    """One choice per precision class measured (fp32 first), from one run's bench rows — rows of one
    CPU and of the artifacts now exported (the caller's filter: `current_rows`), compared at the
    smallest batch and the fewest threads among them."""
    rows = [r for r in rows if r.backend != "torch" and r.median_ms is not None
            and r.storage_precision in PRECISION_CLASS
            and ("@" not in r.artifact or _computed_bf16(r))]
    if not rows:
        return []
    batch, threads = min(r.batch for r in rows), min(r.threads for r in rows)
    rows = [r for r in rows if r.threads == threads and r.batch == batch]
    fp32_acc = [r.accuracy for r in rows if _precision(r) == "fp32" and r.accuracy is not None]
    reference = max(fp32_acc) if fp32_acc else None
    choices = []
    for precision in CHOICE_PRECISIONS:
        measured = _fastest_per_artifact([r for r in rows if _precision(r) == precision])
        if not measured:
            continue
        ok = [r for r in measured if _keeps_accuracy(r, reference, max_drop)]
        if not ok:
            continue
        best = ok[0]
        others = "; ".join(f"{r.artifact} on {r.backend} {r.median_ms:.3f} ms" for r in measured if r is not best)
        dropped = [r for r in measured if r not in ok]
        why = (f"fastest {precision} artifact at batch {best.batch}, {threads} thread(s): {best.artifact} on "
               f"{best.backend} {best.median_ms:.3f} ms (median)" + (f" against {others}" if others else "")
               + (f"; top-1 {best.accuracy:.2f} % (best FP32 {reference:.2f} %)" if reference is not None else "")
               + (f"; left out for accuracy (more than {max_drop} points below FP32, or not measured): "
                  + ", ".join(f"{r.artifact} on {r.backend}" for r in dropped) if dropped else ""))
        bf16 = precision == "bf16"
        choices.append(DeployChoice(precision, best.artifact.removesuffix(BF16_SUFFIX), best.backend, best.median_ms,
                                    threads, batch, best.accuracy, best.sha256, why, "bf16" if bf16 else "f32"))
    return choices


def _computed_bf16(row: BenchRow) -> bool:
    """A "...@bf16" row that OpenVINO really ran in bf16 (where bf16 is not native it may keep f32: such
    a row is not a bf16 measurement, nor a second FP32 one)."""
    return (row.artifact.endswith(BF16_SUFFIX) and row.backend == "openvino"
            and "bf16" in (row.inference_precision or ""))


def _precision(row: BenchRow) -> str:
    """The precision class a row computes in (see the module docstring)."""
    return "bf16" if row.artifact.endswith(BF16_SUFFIX) else PRECISION_CLASS[row.storage_precision]


def current_rows(rows: list[BenchRow], cpu: str, hashes: set[str]) -> list[BenchRow]:
    """The rows a choice may rest on: measured on `cpu`, of files whose sha256 is in `hashes` (the
    export manifest's now). A bench file keeps rows of earlier invocations — other machines, other
    settings, artifacts since re-exported — which must not decide for this one."""
    return [r for r in rows if r.cpu == cpu and r.sha256 in hashes]


def _fastest_per_artifact(rows: list[BenchRow]) -> list[BenchRow]:
    """Each (artifact, backend) once, at its fastest shape (static or dynamic), fastest first."""
    best: dict[tuple[str, str], BenchRow] = {}
    for r in rows:
        key = (r.artifact, r.backend)
        if key not in best or r.median_ms < best[key].median_ms:
            best[key] = r
    return sorted(best.values(), key=lambda r: r.median_ms)


def _keeps_accuracy(row: BenchRow, reference: float | None, max_drop: float) -> bool:
    if _precision(row) == "fp32" and reference is None:
        return True  # nothing to compare with: every FP32 artifact computes the same model (checked at export)
    return row.accuracy is not None and reference is not None and row.accuracy >= reference - max_drop
