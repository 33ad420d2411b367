"""export_run: a finished run → proven ONNX / OpenVINO / ncnn / ExecuTorch artifacts (FP32, FP16, INT8) + their
manifest.

Three steps over typed artifacts:
- build: every artifact is written into a staging folder inside the output folder (OpenVINO IRs and
  ONNX / OpenVINO INT8 graphs are made from the FP32 .onnx file; ncnn graphs (pnnx) and ExecuTorch
  programs (torch.export) from the PyTorch module the .onnx file was exported from, ExecuTorch INT8 from
  the same calibration images);
- prove: each is reopened from disk through runtime.session, checked against the PyTorch model on
  real test images (export/parity.py) and evaluated on the whole test split (runtime.accuracy);
  the graph may be a rewritten form of the student (export/rewrites.py: same function, fewer copies;
  the INT8 graphs are quantised from a form of their own, its image input padded to 4 channels),
  and the check is always against the student as trained;
- publish: those that pass are renamed into the output folder, the manifest last; then the files that
  only the previous manifest listed, and that are still the files it listed, are removed. Until then the
  export being replaced stays whole in `.previous` (hard links), which readers use meanwhile, and after a
  kill mid-publish, until the next export completes (rundir.manifest.verified_export).
The whole export holds the run (rundir.owned, as training does; and the --out folder when elsewhere):
an export and a `train --resume`, or two exports, exclude each other, so the weights and the recipe
it reads are of one moment, and no other writer's files are deleted by its publish. Leftovers of an
export killed before (staging folders, temp files) are removed when the next one starts.
An artifact that fails its check (or cannot be built) is not published: the manifest's `failed` list
and ExportResult.failures name it, with the figure it missed and what to try. A user who asked for
five artifacts and lost one to INT8 keeps the four that are proven. When none passes, the previous
export is left untouched. The CLI exits with EXIT_INCOMPLETE whenever one failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Callable

import numpy as np
import torch

from ..atomic import default_file_mode
from ..data import Splits, load_splits
from ..errors import UserError
from ..imaging import RESIZE_RULE
from ..provenance import git_commit, versions
from ..rundir import LoadedRun, Manifest, ManifestArtifact, RunDir, load_run, owned, require_finished
from ..rundir.layout import manifest_path, owned_folder
from ..rundir.manifest import (PREVIOUS, FileRecord, artifact_record, listed_files, load_verified, still_listed_file,
                               write_manifest)
from ..runtime.accuracy import EVAL_BATCH, evaluate, model_inputs
from ..runtime.backends import FORMAT_OF_BACKEND
from ..runtime.session import open_session
from .onnx_export import BATCH_DIM, INPUT_NAME, SCALE_NORMALISED, SCALE_RAW, NormalisedInput, export_onnx
from .openvino_export import convert_onnx, save_ir
from .parity import FP32_MAX_ABS_DIFF, failure_reason, logits, measure_parity, parity_indices
from .plan import ExportPlan
from .quantize import quantize_onnx, quantize_openvino, sample_indices
from .rewrites import rewrite_for_export, rewrite_for_int8

EXIT_INCOMPLETE = 4  # `mimkd-edge export` / `sweep --export`: an artifact failed; those that passed are published
VALIDATION_IMAGES = 1000  # accuracy control: training images disjoint from the calibration set

Progress = Callable[[str], None]


# What to try when an artifact misses its check, by artifact name.
REMEDIES = {
    "onnx-fp32": "try the other --exporter or another --opset",
    "openvino-fp32": "try the other --exporter or another --opset",
    "openvino-fp16": "keep the FP32 IR, or accept the FP16 one with a lower --min-agreement",
    "openvino-int8": "try --max-drop 1 (NNCF accuracy control, keeps the harmful layers in float) or a larger --calib",
    "onnx-int8": "try a larger --calib, or the OpenVINO INT8 IR with --max-drop (onnxruntime has no accuracy control)",
    "ncnn-fp32": "try --no-rewrite, or deploy the ONNX / OpenVINO artifacts",
    "ncnn-fp16": "keep the FP32 ncnn graph, or accept the FP16 one with a lower --min-agreement",
    "executorch-fp32": "try --no-rewrite, or deploy the ONNX / OpenVINO artifacts",
    "executorch-int8": "try a larger --calib, or the OpenVINO INT8 IR with --max-drop (XNNPACKQuantizer has no "
                       "accuracy control)",
}


@dataclass(frozen=True)
class ArtifactFailure:
    """An artifact that was asked for and not published: why (the figure it missed) and what to try."""

    name: str
    path: str
    backend: str
    reason: str
    remedy: str
    parity: dict | None = None

    def line(self) -> str:
        return f"{self.path} ({self.backend}) not published: {self.reason}; {self.remedy}"


@dataclass
class ExportResult:
    out_dir: Path
    manifest_path: Path | None  # None when no artifact passed (the previous export, if any, is untouched)
    manifest: Manifest | None
    notes: list[str] = field(default_factory=list)  # things the user should know (printed by the CLI)
    failures: list[ArtifactFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Reference:
    """The PyTorch side of every check, computed once: the parity set's inputs and logits, the
    test split and the reference accuracy on it, and the metadata every artifact carries."""

    run: LoadedRun
    splits: Splits
    baked: bool
    module: torch.nn.Module  # the student, with the normalisation in front when baked
    exported: torch.nn.Module  # what gets exported: `module`, or its rewritten form
    rewrites: tuple[str, ...]
    int8_exported: torch.nn.Module | None  # what the INT8 artifacts are quantised from, when not `exported`
    int8_rewrites: tuple[str, ...]  # the rewrites in that graph (`rewrites` and the INT8-only ones)
    parity_idx: np.ndarray
    x_parity: np.ndarray
    logits: np.ndarray  # float64, PyTorch's logits on x_parity
    test_accuracy: float
    metadata: dict[str, str]

    def inputs(self, images: torch.Tensor) -> np.ndarray:
        return model_inputs(images, self.splits.mean, self.splits.std, baked=self.baked)


def prepare_reference(run: LoadedRun, splits: Splits, plan: ExportPlan, threads: int, say: Progress) -> Reference:
    mean, std, baked = tuple(splits.mean), tuple(splits.std), plan.bake_normalisation
    module = (NormalisedInput(run.model, mean, std) if baked else run.model).eval()
    rewritten = rewrite_for_export(run.model.eval(), plan.model_rewrites) if plan.rewrite else None
    exported = module
    if rewritten is not None and rewritten.applied:
        say(f"rewriting the graph for export: {', '.join(rewritten.applied)}")
        exported = (NormalisedInput(rewritten.module, mean, std) if baked else rewritten.module).eval()
    idx = parity_indices(len(splits.test), plan.parity_images)
    x_par = model_inputs(splits.test.take(torch.from_numpy(idx)), mean, std, baked=baked)
    say(f"PyTorch reference: logits on {len(idx)} test images, accuracy on {len(splits.test):,}")
    session = open_session(module, "torch", threads=threads)
    ref = logits(session, x_par).astype(np.float64)
    acc = evaluate(session, splits.test, mean, std, baked=baked).accuracy
    recipe_text = RunDir(run.path).recipe.read_text(encoding="utf-8")
    run_acc = run.summary.final_test_acc if run.summary else None
    metadata = {
        "classes": json.dumps(list(splits.classes)),
        "input_size": json.dumps([splits.channels, splits.image_size, splits.image_size]),
        "mean": json.dumps(list(mean)), "std": json.dumps(list(std)),
        "normalisation_baked": "true" if baked else "false", "input_scale": SCALE_RAW if baked else SCALE_NORMALISED,
        "colour_mode": "L" if splits.channels == 1 else "RGB", "resize": RESIZE_RULE,
        "recipe_name": run.recipe.name, "recipe_sha256": hashlib.sha256(recipe_text.encode("utf-8")).hexdigest(),
        "recipe": recipe_text,
        "run_test_accuracy": "" if run_acc is None else f"{run_acc:.4f}", "pytorch_test_accuracy": f"{acc:.4f}",
    }
    rewrites = rewritten.applied if rewritten is not None else ()
    metadata["rewrites"] = json.dumps(list(rewrites))
    int8_exported, int8_rewrites = None, rewrites
    if plan.pad_int8_input:
        padded = rewrite_for_int8(rewritten.module, input_channels=splits.channels, input_size=splits.image_size)
        if padded.applied:
            int8_rewrites = rewrites + padded.applied
            int8_exported = (NormalisedInput(padded.module, mean, std) if baked else padded.module).eval()
    return Reference(run, splits, baked, module, exported, rewrites, int8_exported, int8_rewrites, idx, x_par, ref,
                     acc, metadata)


class Exporter:
    """Builds artifacts into `stage` and proves each against `ref`; keeps the passed and the failed."""

    def __init__(self, ref: Reference, plan: ExportPlan, stage: Path, out_dir: Path, threads: int, say: Progress):
        self.ref, self.plan, self.stage, self.out_dir, self.threads, self.say = ref, plan, stage, out_dir, threads, say
        self.opset = plan.opset
        self.artifacts: list[ManifestArtifact] = []
        self.failures: list[ArtifactFailure] = []
        self.notes: list[str] = []
        self.exported = None  # the FP32 ONNX export (exporter, opset, seconds)
        self.int8_source: Path | None = None  # the FP32 graph the INT8 artifacts are quantised from
        self.calibration: dict | None = None

    @property
    def onnx_path(self) -> Path:
        return self.stage / "model_fp32.onnx"

    def prove(self, label: str, files: list[Path], backend: str, quantisation: dict | None = None) -> None:
        ref, n_par = self.ref, len(self.ref.parity_idx)
        self.say(f"checking {files[0].name} on {backend}: parity on {n_par} test images, "
                 f"accuracy on {len(ref.splits.test):,}")
        session = open_session(files[0], backend, threads=self.threads)
        parity = measure_parity(ref.logits, session, ref.x_parity, session.precision,
                                min_agreement=self.plan.min_agreement)
        reason = failure_reason(parity, session.precision)
        if reason is not None:
            self.failures.append(ArtifactFailure(label, str(self.out_dir / files[0].name), backend, reason,
                                                 REMEDIES[label], parity.as_dict()))
            return
        acc = evaluate(session, ref.splits.test, ref.splits.mean, ref.splits.std, baked=ref.baked).accuracy
        self.artifacts.append(artifact_record(
            label, files, self.stage, format=FORMAT_OF_BACKEND[backend], backend=backend,
            storage_precision=session.precision, inference_precision=session.inference_precision,
            opset=self.opset if backend in ("onnxruntime", "openvino") else None,
            parity=parity.as_dict(), test_accuracy=acc, accuracy_delta=acc - ref.test_accuracy,
            quantisation=quantisation))

    def build_and_prove(self, label: str, file_name: str, backend: str,
                        build: Callable[[], tuple[list[Path], dict | None]]) -> None:
        """Build one optional artifact and prove it; a build the tool refuses is that artifact's failure."""
        try:
            files, quantisation = build()
        except UserError as e:
            self.failures.append(ArtifactFailure(label, str(self.out_dir / file_name), backend,
                                                 f"could not be built ({e})", REMEDIES[label]))
            return
        self.prove(label, files, backend, quantisation)

    def onnx_fp32(self) -> None:
        """The FP32 graph every other artifact is made from; published only when ONNX was asked for."""
        self.say(f"exporting ONNX ({self.plan.exporter} exporter, opset {self.opset})")
        self.exported = export_onnx(self.ref.exported, self.onnx_path, input_size=self.ref.splits.image_size,
                                    opset=self.opset, exporter=self.plan.exporter, metadata=self.ref.metadata,
                                    name=self.ref.run.recipe.student.model)
        if self.plan.onnx:
            self.prove("onnx-fp32", [self.onnx_path], "onnxruntime")

    def openvino_irs(self) -> None:
        for label, compress in (("openvino-fp32", False), ("openvino-fp16", True)):
            if compress and not self.plan.fp16:
                continue
            precision = "fp16" if compress else "fp32"
            self.say(f"converting to OpenVINO IR ({'FP16-compressed weights' if compress else 'FP32'})")
            xml = self.stage / f"model_{precision}.xml"
            self.build_and_prove(label, xml.name, "openvino", lambda xml=xml, compress=compress, p=precision: (save_ir(
                convert_onnx(self.onnx_path), xml, compress_to_fp16=compress,
                metadata={**self.ref.metadata, "precision": p}), None))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        splits = self.ref.splits
        return splits.channels, splits.image_size, splits.image_size

    def ncnn_graphs(self) -> None:
        """ncnn graphs of the exported module (pnnx): FP32, and FP16 weights with --fp16."""
        from .ncnn_export import export_ncnn

        for label, fp16 in (("ncnn-fp32", False), ("ncnn-fp16", True)):
            if fp16 and not self.plan.fp16:
                continue
            precision = "fp16" if fp16 else "fp32"
            self.say(f"converting to ncnn with pnnx ({'FP16' if fp16 else 'FP32'} weights)")
            param = self.stage / f"model_{precision}.ncnn.param"
            self.build_and_prove(label, param.name, "ncnn", lambda param=param, fp16=fp16, p=precision: (export_ncnn(
                self.ref.exported, param, input_shape=self.image_shape, fp16=fp16,
                metadata={**self.ref.metadata, "precision": p}, name=self.ref.run.recipe.student.model), None))

    def executorch_fp32(self) -> None:
        from .executorch_export import export_pte

        self.say("exporting an ExecuTorch program (XNNPACK, FP32)")
        pte = self.stage / "model_fp32.pte"
        self.build_and_prove("executorch-fp32", pte.name, "executorch", lambda: (export_pte(
            self.ref.exported, pte, input_shape=self.image_shape, metadata={**self.ref.metadata, "precision": "fp32"},
            name=self.ref.run.recipe.student.model), None))

    def int8(self) -> None:
        plan, train = self.plan, self.ref.splits.train
        idx = sample_indices(len(train), min(plan.calib, len(train)))
        if len(idx) < plan.calib:
            self.notes.append(f"--calib {plan.calib}: the training split has only {len(train)} images; "
                              "calibrated on all of them")
        x_cal = self.ref.inputs(train.take(torch.from_numpy(idx)))
        self.calibration = {"images": int(len(idx)), "split": "train", "transform": "test-time (no augmentation)",
                            "selection": "first N of numpy default_rng(0).permutation(len(train)), sorted",
                            "indices_sha256": hashlib.sha256(idx.astype(np.int64).tobytes()).hexdigest()}
        if plan.onnx or plan.openvino:
            self._onnx_source_int8(x_cal, len(idx))
        if plan.executorch:
            self._executorch_int8(x_cal)

    def _onnx_source_int8(self, x_cal: np.ndarray, n_cal: int) -> None:
        """The ONNX and OpenVINO INT8 artifacts, quantised from one FP32 graph."""
        plan = self.plan
        self.int8_source = self.onnx_path
        if self.ref.int8_exported is not None:  # INT8-only rewrites: a graph of their own, never published
            self.say(f"exporting the graph to quantise ({', '.join(self.ref.int8_rewrites)})")
            self.int8_source = self.stage / "int8_source_fp32.onnx"
            export_onnx(self.ref.int8_exported, self.int8_source, input_size=self.ref.splits.image_size,
                        opset=self.opset, exporter=self.plan.exporter, metadata=self.int8_metadata(),
                        name=self.ref.run.recipe.student.model)
        if plan.openvino:
            self._openvino_int8(x_cal, n_cal)
        if plan.onnx:
            self._onnx_int8(x_cal, n_cal)

    def _executorch_int8(self, x_cal: np.ndarray) -> None:
        """Quantised from the FP32 export's module (not the INT8-only rewrites: padding the input to 4 channels
        is for the u8×s8 VNNI kernels of onnxruntime and OpenVINO, export/rewrites.py, not measured in XNNPACK)."""
        from .executorch_export import quantize_pte

        self.say(f"quantising the ExecuTorch program to INT8 with XNNPACKQuantizer ({len(x_cal)} calibration images)")
        pte = self.stage / "model_int8.pte"

        def build():
            files, settings = quantize_pte(self.ref.exported, pte, x_cal, input_shape=self.image_shape,
                                           metadata={**self.ref.metadata, "precision": "int8"},
                                           name=self.ref.run.recipe.student.model)
            settings["rewrites"] = list(self.ref.rewrites)
            return files, settings

        self.build_and_prove("executorch-int8", pte.name, "executorch", build)

    def int8_metadata(self) -> dict[str, str]:
        return {**self.ref.metadata, "rewrites": json.dumps(list(self.ref.int8_rewrites))}

    def _openvino_int8(self, x_cal: np.ndarray, n_cal: int) -> None:
        plan, train = self.plan, self.ref.splits.train
        validation = None
        if plan.max_drop is not None:
            n_val = min(VALIDATION_IMAGES, len(train) - n_cal)
            if n_val < 1:
                raise UserError("--max-drop needs training images beyond the calibration set; lower --calib")
            vidx = torch.from_numpy(sample_indices(len(train), n_val, skip=n_cal))
            validation = (self.ref.inputs(train.take(vidx)), train.labels[vidx].numpy())
        self.say(f"quantising the OpenVINO IR to INT8 with NNCF ({n_cal} calibration images"
                 + (f", accuracy control: max drop {plan.max_drop:g} points" if plan.max_drop is not None else "")
                 + ")")

        def build():
            quantised, settings = quantize_openvino(convert_onnx(self.int8_source), x_cal,
                                                    overflow_fix=plan.overflow_fix, max_drop=plan.max_drop,
                                                    validation=validation, validate=_validate_compiled)
            settings["rewrites"] = list(self.ref.int8_rewrites)
            return save_ir(quantised, self.stage / "model_int8.xml", compress_to_fp16=False,
                           metadata={**self.int8_metadata(), "precision": "int8"}), settings

        self.build_and_prove("openvino-int8", "model_int8.xml", "openvino", build)

    def _onnx_int8(self, x_cal: np.ndarray, n_cal: int) -> None:
        self.say(f"quantising the ONNX model to INT8 with onnxruntime ({n_cal} calibration images)")
        target = self.stage / "model_int8.onnx"

        def build():
            settings = quantize_onnx(self.int8_source, target, x_cal, overflow_fix=self.plan.overflow_fix)
            settings["rewrites"] = list(self.ref.int8_rewrites)
            if self.plan.max_drop is not None:
                settings["accuracy_control"] = {
                    "supported": False,
                    "note": "onnxruntime has no accuracy-controlled quantisation; --max-drop was not applied"}
                self.notes.append("--max-drop applies to the OpenVINO INT8 IR only "
                                  "(nncf.quantize_with_accuracy_control); onnxruntime has no "
                                  "accuracy-controlled quantisation, so model_int8.onnx is plain PTQ")
            return [target], settings

        self.build_and_prove("onnx-int8", target.name, "onnxruntime", build)

    def manifest(self) -> Manifest:
        ref, splits, run = self.ref, self.ref.splits, self.ref.run
        size, chans = splits.image_size, splits.channels
        recipe_file = RunDir(run.path).recipe
        return Manifest(
            model=run.recipe.student.model, run=str(run.path),
            recipe={"name": run.recipe.name, "path": str(recipe_file), "sha256": ref.metadata["recipe_sha256"]},
            weights={"path": RunDir(run.path).weights.name, "size": run.weights_size, "sha256": run.weights_sha256},
            input={"name": INPUT_NAME, "shape": [BATCH_DIM, chans, size, size], "dtype": "float32",
                   "normalisation_baked": ref.baked, "scale": SCALE_RAW if ref.baked else SCALE_NORMALISED,
                   "mean": list(splits.mean), "std": list(splits.std)},
            classes=list(splits.classes), output="logits",
            exporter=self.exported.exporter, opset=self.exported.opset,
            export_seconds=round(self.exported.seconds, 2), rewrites=list(ref.rewrites),
            data={"dataset": run.recipe.data.dataset, "source": splits.source, "test_images": len(splits.test)},
            parity_set={"images": len(ref.parity_idx), "split": "test",
                        "selection": "evenly spaced: i * len(test) // N",
                        "indices_sha256": hashlib.sha256(ref.parity_idx.tobytes()).hexdigest()},
            thresholds={"fp32_max_abs_diff": FP32_MAX_ABS_DIFF, "min_top1_agreement": self.plan.min_agreement},
            calibration_set=self.calibration,
            pytorch={"test_accuracy": ref.test_accuracy,
                     "run_summary_test_accuracy": run.summary.final_test_acc if run.summary else None},
            artifacts=self.artifacts, failed=[asdict(f) for f in self.failures],
            versions=versions(), git_commit=git_commit(), created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def export_run(run: str | Path, plan: ExportPlan | None = None, *, out: str | Path | None = None,
               data_dir: str | None = None, threads: int | None = None, progress: Progress | None = None,
               **options) -> ExportResult:
    """Export the student of run directory `run`; artifacts go to `out` (default RUN/export).
    `plan` says what to build; without it, `options` are ExportPlan's fields (onnx=, openvino=, ...)."""
    plan = plan or ExportPlan(**options)
    plan.require_installed()
    path = require_finished(run)
    out_dir = Path(out) if out is not None else RunDir(path).export
    with _exclusive(path, out_dir):
        return _export(path, out_dir, plan, data_dir, threads or torch.get_num_threads(),
                       progress or (lambda message: None))


@contextlib.contextmanager
def _exclusive(run: Path, out_dir: Path):
    """Hold the run (training holds it too) and the output folder (another run's export may name it --out)."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(owned(run, "exporting"))
        stack.enter_context(owned_folder(out_dir))  # its own export/ too: another run's export may --out there
        yield


def _export(run: Path, out_dir: Path, plan: ExportPlan, data_dir: str | None, threads: int,
            say: Progress) -> ExportResult:
    loaded = load_run(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out_dir)
    previous = listed_files(out_dir)  # what this export supersedes, read while no one else can publish
    say(f"loading the {loaded.recipe.data.dataset} data set")
    splits = load_splits(loaded.recipe.data, data_dir, recorded=loaded.data_source)
    say(f"data: {splits.source} (from {splits.origin})")
    ref = prepare_reference(loaded, splits, plan, threads, say)

    stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=STAGING_PREFIX))
    try:
        ex = Exporter(ref, plan, stage, out_dir, threads, say)
        ex.onnx_fp32()
        if plan.openvino:
            ex.openvino_irs()
        if plan.ncnn:
            ex.ncnn_graphs()
        if plan.executorch:
            ex.executorch_fp32()
        if plan.int8:
            ex.int8()
        if not ex.artifacts:
            return ExportResult(out_dir, None, None, ex.notes, ex.failures)
        manifest = ex.manifest()
        return ExportResult(out_dir, publish(stage, out_dir, manifest, previous), manifest, ex.notes, ex.failures)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


STAGING_PREFIX = ".staging-"


def remove_leftovers(out_dir: Path) -> None:
    """What an export killed mid-way left in `out_dir`: its staging folders and the temp files of its
    half-written manifest. Called only while owning the folder, so none is another export's (a bench
    writing the accuracy cache beside them owns nothing: its temp files are left alone)."""
    for stale in out_dir.glob(f".{manifest_path(out_dir).name}.*.tmp"):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink(missing_ok=True)
    for stale in out_dir.glob(f"{STAGING_PREFIX}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _validate_compiled(compiled, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 % of an OpenVINO compiled model (what NNCF hands to the validation function)."""
    correct = 0
    for i in range(0, len(x), EVAL_BATCH):
        out = compiled(x[i: i + EVAL_BATCH])[0]
        correct += int((np.asarray(out).argmax(1) == y[i: i + EVAL_BATCH]).sum())
    return 100.0 * correct / max(1, len(y))


def publish(stage: Path, out_dir: Path, manifest: Manifest, previous: dict[str, FileRecord]) -> Path:
    """Rename the staged files into `out_dir` (an IR's .bin before its .xml), the manifest last; then
    remove the files of `previous` (the manifest this export supersedes) that the new one does not list,
    each only if it is still the file that manifest listed (a file another writer made is not ours)."""
    keep_previous(out_dir)
    current: list[str] = []
    mode = default_file_mode()
    for artifact in manifest.artifacts:
        for f in reversed(artifact.files):  # .bin before .xml
            os.chmod(stage / f.path, mode)  # temp files are created 0600; artifacts are meant to be copied
            os.replace(stage / f.path, out_dir / f.path)
            current.append(f.path)
    path = write_manifest(out_dir, manifest)
    for name, record in previous.items():
        if name not in current and still_listed_file(out_dir, record):
            (out_dir / name).unlink()
    shutil.rmtree(out_dir / PREVIOUS, ignore_errors=True)
    return path


def keep_previous(out_dir: Path) -> None:
    """Hard-link the files of the export in `out_dir` and its manifest into `out_dir/.previous` when that
    export is whole (every file as its manifest lists it): what readers use while it is being replaced. A
    `.previous` left by a killed publish is kept when the folder is not whole and it is; when the folder is
    whole (the publish was killed after its manifest), the files only that older export listed are removed."""
    kept = out_dir / PREVIOUS
    try:
        whole = load_verified(out_dir)
    except UserError:  # no export yet, a damaged one, or one whose publish was killed mid-way
        if kept.exists():
            try:
                load_verified(kept)
                return  # the last whole export: keep it until this publish completes
            except UserError:
                shutil.rmtree(kept, ignore_errors=True)
        return
    listed = listed_files(out_dir)
    for name, record in listed_files(kept).items():  # older than the whole folder (a publish killed after its
        if name not in listed and still_listed_file(out_dir, record):  # manifest): the files only it listed go
            (out_dir / name).unlink()
    shutil.rmtree(kept, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=STAGING_PREFIX))  # a kill here leaves a leftover, not a .previous
    for name in [f.path for a in whole.artifacts for f in a.files] + [manifest_path(out_dir).name]:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(out_dir / name, tmp / name)
        except OSError:  # a file system without hard links
            shutil.copy2(out_dir / name, tmp / name)
    os.rename(tmp, kept)
