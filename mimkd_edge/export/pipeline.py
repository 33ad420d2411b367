"""export_run: a finished run → proven ONNX / OpenVINO artifacts (FP32, FP16, INT8) + manifest.json.

Every artifact is built in a staging folder inside the output folder, reopened from disk through
runtime.session, checked against the PyTorch model on real test images (export/parity.py) and
evaluated on the whole test split. The artifacts that pass are renamed into the output folder,
manifest.json last; one that fails its check (or cannot be built) is not published: the manifest's
`failed` list and ExportResult.failures name it, with the figure it missed and what to try. A user
who asked for five artifacts and lost one to INT8 keeps the four that are proven. When none passes,
the previous export is left untouched. The CLI exits with EXIT_INCOMPLETE whenever one failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data import load_splits
from ..engine import rundir
from ..errors import UserError
from ..provenance import git_commit, versions
from ..runtime import manifest as mf
from ..runtime.session import open_session
from .onnx_export import (BATCH_DIM, INPUT_NAME, SCALE_NORMALISED, SCALE_RAW, NormalisedInput, export_onnx,
                          resolve_opset)
from .openvino_export import convert_onnx, save_ir
from .parity import (MIN_TOP1_AGREEMENT, PARITY_IMAGES, accuracy, failure_reason, logits, measure_parity,
                     parity_indices, prepare_inputs)
from .quantize import OVERFLOW_FIXES, quantize_onnx, quantize_openvino, sample_indices

DEFAULT_CALIBRATION = 300
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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExportResult:
    out_dir: Path
    manifest_path: Path | None  # None when no artifact passed (the previous export, if any, is untouched)
    manifest: dict | None
    notes: list[str] = field(default_factory=list)  # things the user should know (printed by the CLI)
    failures: list[ArtifactFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.failures


def export_run(run: str | Path, *, out: str | Path | None = None, onnx: bool = True, openvino: bool = False,
               fp16: bool = False, int8: bool = False, opset: int | None = None, exporter: str = "dynamo",
               calib: int = DEFAULT_CALIBRATION, max_drop: float | None = None, bake_normalisation: bool = False,
               parity_images: int = PARITY_IMAGES, min_agreement: float = MIN_TOP1_AGREEMENT,
               overflow_fix: str = "all", data_dir: str | None = None, threads: int | None = None,
               progress: Progress | None = None) -> ExportResult:
    """Export the student of run directory `run`; artifacts go to `out` (default RUN/export).

    onnx → model_fp32.onnx (+ model_int8.onnx with int8); openvino → model_fp32.xml/.bin
    (+ model_fp16.xml with fp16, model_int8.xml with int8). OpenVINO IRs are converted from the
    FP32 .onnx file, which is built either way (kept only with `onnx`).
    """
    say = progress or (lambda message: None)
    if not (onnx or openvino):
        raise UserError("nothing to export: choose --onnx and/or --openvino")
    if fp16 and not openvino:
        raise UserError("--fp16 makes an FP16-compressed OpenVINO IR: add --openvino")
    if max_drop is not None and not int8:
        raise UserError("--max-drop controls INT8 quantisation: add --int8")
    if calib < 1 or parity_images < 1:
        raise UserError("--calib and the parity set need at least one image")
    if overflow_fix not in OVERFLOW_FIXES:
        raise UserError(f"--overflow-fix: choose one of {', '.join(OVERFLOW_FIXES)}")
    opset = resolve_opset(exporter, opset)
    threads = threads or torch.get_num_threads()
    notes: list[str] = []

    loaded = rundir.load_run(run)
    recipe, name = loaded.recipe, loaded.recipe.student.model
    out_dir = Path(out) if out is not None else loaded.path / "export"
    say(f"loading the {recipe.data.dataset} data set")
    splits = load_splits(recipe.data, data_dir, recorded=loaded.data_source)
    mean, std, baked = tuple(splits.mean), tuple(splits.std), bake_normalisation
    size, chans = splits.image_size, splits.channels  # the run's geometry (its recipe is resolved)
    test, train = splits.test, splits.train
    reference = (NormalisedInput(loaded.model, mean, std) if baked else loaded.model).eval()

    par_idx = parity_indices(len(test), parity_images)
    n_par = len(par_idx)
    x_par = prepare_inputs(test.take(torch.from_numpy(par_idx)), mean, std, baked=baked)
    say(f"PyTorch reference: logits on {n_par} test images, accuracy on {len(test):,}")
    torch_session = open_session(reference, "torch", threads=threads)
    ref = logits(torch_session, x_par).astype(np.float64)
    torch_acc = accuracy(torch_session, test, mean, std, baked=baked)

    recipe_file = loaded.path / rundir.RECIPE
    recipe_text = recipe_file.read_text(encoding="utf-8")
    recipe_sha = hashlib.sha256(recipe_text.encode("utf-8")).hexdigest()
    run_acc = loaded.summary.get("final_test_acc")
    metadata = {
        "classes": json.dumps(list(splits.classes)), "input_size": json.dumps([chans, size, size]),
        "mean": json.dumps(list(mean)), "std": json.dumps(list(std)),
        "normalisation_baked": "true" if baked else "false", "input_scale": SCALE_RAW if baked else SCALE_NORMALISED,
        "recipe_name": recipe.name, "recipe_sha256": recipe_sha, "recipe": recipe_text,
        "run_test_accuracy": "" if run_acc is None else f"{run_acc:.4f}", "pytorch_test_accuracy": f"{torch_acc:.4f}",
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    artifacts: list[dict] = []
    failures: list[ArtifactFailure] = []

    def prove(label: str, files: list[Path], backend: str, fmt: str, quantisation: dict | None = None) -> None:
        final = out_dir / files[0].name
        say(f"checking {files[0].name} on {backend}: parity on {n_par} test images, accuracy on {len(test):,}")
        session = open_session(files[0], backend, threads=threads)
        parity = measure_parity(ref, session, x_par, session.precision, min_agreement=min_agreement)
        reason = failure_reason(parity, session.precision)
        if reason is not None:
            failures.append(ArtifactFailure(label, str(final), backend, reason, REMEDIES[label], parity.as_dict()))
            return
        acc = accuracy(session, test, mean, std, baked=baked)
        artifacts.append(mf.artifact_record(
            label, files, stage, format=fmt, backend=backend, storage_precision=session.precision,
            inference_precision=session.inference_precision, opset=opset, parity=parity.as_dict(),
            test_accuracy=acc, accuracy_delta=acc - torch_acc, quantisation=quantisation))

    def build_and_prove(label: str, file_name: str, backend: str, build: Callable[[], tuple[list[Path], dict | None]]):
        """Build one optional artifact and prove it; a build the tool refuses is that artifact's failure."""
        fmt = "openvino-ir" if backend == "openvino" else "onnx"
        try:
            files, quantisation = build()
        except UserError as e:
            failures.append(ArtifactFailure(label, str(out_dir / file_name), backend, f"could not be built ({e})",
                                            REMEDIES[label]))
            return
        prove(label, files, backend, fmt, quantisation)

    try:
        onnx_path = stage / "model_fp32.onnx"
        say(f"exporting ONNX ({exporter} exporter, opset {opset})")
        exported = export_onnx(reference, onnx_path, input_size=size, opset=opset, exporter=exporter,
                               metadata=metadata, name=name)
        if onnx:
            prove("onnx-fp32", [onnx_path], "onnxruntime", "onnx")
        if openvino:
            say("converting to OpenVINO IR (FP32)")
            build_and_prove("openvino-fp32", "model_fp32.xml", "openvino", lambda: (save_ir(
                convert_onnx(onnx_path), stage / "model_fp32.xml", compress_to_fp16=False,
                metadata={**metadata, "precision": "fp32"}), None))
            if fp16:
                say("converting to OpenVINO IR (FP16-compressed weights)")
                build_and_prove("openvino-fp16", "model_fp16.xml", "openvino", lambda: (save_ir(
                    convert_onnx(onnx_path), stage / "model_fp16.xml", compress_to_fp16=True,
                    metadata={**metadata, "precision": "fp16"}), None))
        calibration = None
        if int8:
            idx = sample_indices(len(train), min(calib, len(train)))
            if len(idx) < calib:
                notes.append(f"--calib {calib}: the training split has only {len(train)} images; "
                             "calibrated on all of them")
            x_cal = prepare_inputs(train.take(torch.from_numpy(idx)), mean, std, baked=baked)
            calibration = {"images": int(len(idx)), "split": "train", "transform": "test-time (no augmentation)",
                           "selection": "first N of numpy default_rng(0).permutation(len(train)), sorted",
                           "indices_sha256": hashlib.sha256(idx.astype(np.int64).tobytes()).hexdigest()}
            if openvino:
                validation = None
                if max_drop is not None:
                    n_val = min(VALIDATION_IMAGES, len(train) - len(idx))
                    if n_val < 1:
                        raise UserError("--max-drop needs training images beyond the calibration set; lower --calib")
                    vidx = torch.from_numpy(sample_indices(len(train), n_val, skip=len(idx)))
                    validation = (prepare_inputs(train.take(vidx), mean, std, baked=baked),
                                  train.labels[vidx].numpy())
                say(f"quantising the OpenVINO IR to INT8 with NNCF ({len(idx)} calibration images"
                    + (f", accuracy control: max drop {max_drop:g} points" if max_drop is not None else "") + ")")

                def build_ov_int8():
                    quantised, settings = quantize_openvino(
                        convert_onnx(onnx_path), x_cal, overflow_fix=overflow_fix, max_drop=max_drop,
                        validation=validation, validate=_validate_compiled)
                    return save_ir(quantised, stage / "model_int8.xml", compress_to_fp16=False,
                                   metadata={**metadata, "precision": "int8"}), settings

                build_and_prove("openvino-int8", "model_int8.xml", "openvino", build_ov_int8)
            if onnx:
                say(f"quantising the ONNX model to INT8 with onnxruntime ({len(idx)} calibration images)")

                def build_ort_int8():
                    settings = quantize_onnx(onnx_path, stage / "model_int8.onnx", x_cal, overflow_fix=overflow_fix)
                    if max_drop is not None:
                        settings["accuracy_control"] = {
                            "supported": False,
                            "note": "onnxruntime has no accuracy-controlled quantisation; --max-drop was not applied"}
                        notes.append("--max-drop applies to the OpenVINO INT8 IR only "
                                     "(nncf.quantize_with_accuracy_control); onnxruntime has no "
                                     "accuracy-controlled quantisation, so model_int8.onnx is plain PTQ")
                    return [stage / "model_int8.onnx"], settings

                build_and_prove("onnx-int8", "model_int8.onnx", "onnxruntime", build_ort_int8)

        if not artifacts:
            return ExportResult(out_dir, None, None, notes, failures)
        manifest = {
            "schema": mf.SCHEMA, "run": str(loaded.path), "model": name,
            "recipe": {"name": recipe.name, "path": str(recipe_file), "sha256": recipe_sha},
            "input": {"name": INPUT_NAME, "shape": [BATCH_DIM, chans, size, size], "dtype": "float32",
                      "normalisation_baked": baked, "scale": SCALE_RAW if baked else SCALE_NORMALISED,
                      "mean": list(mean), "std": list(std)},
            "classes": list(splits.classes), "output": "logits",
            "exporter": exported.exporter, "opset": exported.opset, "export_seconds": round(exported.seconds, 2),
            "data": {"dataset": recipe.data.dataset, "source": splits.source, "test_images": len(test)},
            "parity_set": {"images": n_par, "split": "test", "selection": "evenly spaced: i * len(test) // N",
                           "indices_sha256": hashlib.sha256(par_idx.tobytes()).hexdigest()},
            "thresholds": {"fp32_max_abs_diff": 1e-4, "min_top1_agreement": min_agreement},
            "calibration_set": calibration,
            "pytorch": {"test_accuracy": torch_acc, "run_summary_test_accuracy": run_acc},
            "artifacts": artifacts,
            "failed": [f.as_dict() for f in failures],
            "versions": versions(), "git_commit": git_commit(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        manifest_path = _publish(stage, out_dir, manifest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return ExportResult(out_dir, manifest_path, manifest, notes, failures)


def _validate_compiled(compiled, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 % of an OpenVINO compiled model (what NNCF hands to the validation function)."""
    correct = 0
    for i in range(0, len(x), 256):
        out = compiled(x[i: i + 256])[0]
        correct += int((np.asarray(out).argmax(1) == y[i: i + 256]).sum())
    return 100.0 * correct / max(1, len(y))


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _publish(stage: Path, out_dir: Path, manifest: dict) -> Path:
    """Rename the staged files into `out_dir` (an IR's .bin before its .xml), manifest.json last;
    then remove files that only the previous manifest listed."""
    previous: set[str] = set()
    old = out_dir / mf.MANIFEST
    if old.is_file():
        try:
            previous = {f["path"] for a in json.loads(old.read_text(encoding="utf-8")).get("artifacts", [])
                        for f in a.get("files", [])}
        except (OSError, ValueError, KeyError, TypeError):
            previous = set()
    current: list[str] = []
    mode = _default_file_mode()
    for artifact in manifest["artifacts"]:
        for f in reversed(artifact["files"]):  # .bin before .xml
            os.chmod(stage / f["path"], mode)  # temp files are created 0600; artifacts are meant to be copied
            os.replace(stage / f["path"], out_dir / f["path"])
            current.append(f["path"])
    path = mf.write_manifest(out_dir, manifest)
    os.chmod(path, mode)
    for stale in previous - set(current):
        target = out_dir / stale
        if target.is_file() and target.resolve().parent == out_dir.resolve():
            target.unlink()
    return path
