"""INT8 post-training quantisation: NNCF for OpenVINO IRs, onnxruntime static (QDQ) for ONNX.

Calibration: N training images (default 300), chosen deterministically (a fixed-seed permutation of
the training indices, first N, sorted), prepared exactly as at test time (no augmentation), fed one
image per item to NNCF and in batches of 32 to onnxruntime's calibrator.

Both tools quantise activations to u8 and weights to s8 (NNCF's "performance" preset; onnxruntime's
QUInt8/QInt8, per-channel weights, MinMax calibration, QDQ format — what ORT's CPU kernels fuse).

Defaults, chosen on measurements (bench/int8_choices.py, bench/results/int8_choices.md; test top-1
change against FP32 on an AVX2 EPYC without VNNI): 7-bit weights everywhere and NNCF's full bias
correction (fast_bias_correction=False, which re-measures each layer's output shift layer by layer).
NNCF's own defaults (first-layer fix, fast bias correction) lost 0.32 / 0.40 / 0.22 points on the
CPU-protocol Conv-4-MP none / KD students and ResNet-20 teacher and 1.20 on a non-CIFAR folder (28×28
gray shapes); the defaults here +0.07 / −0.04 / −0.26 and −0.50 (the table has every figure). The MIXED
preset and 1000 calibration images did not help. Full bias correction costs export time only
(seconds for these models), 7-bit weights a little resolution; neither costs latency.

Saturation on AVX2/AVX-512 CPUs without VNNI: there u8×s8 products are summed in pairs into int16
(vpmaddubsw) and can clip. The `overflow_fix` option chooses the remedy:

- "all" (default): 7-bit weights everywhere (NNCF OverflowFix.ENABLE, onnxruntime reduce_range=True):
  safe on any x86 CPU — the target CPU of an artifact is not known when it is made. Measured on the
  8-epoch CPU-protocol Conv-4-MP (no distillation, 77.69 % FP32, without VNNI): full-range ORT INT8
  read 69.93 % (top-1 agreement with PyTorch 81.3 %), 7-bit 77.80 % (98.9 %); ORT's reference QDQ
  kernels (graph optimisation off, no integer arithmetic) read 77.73 %, so the loss was the integer
  kernel's saturation, not the quantisation grid.
- "first-layer": NNCF's own default (OverflowFix.FIRST_LAYER): only the first convolution's weights
  use 7 bits. onnxruntime has no per-layer switch, so there it means 7-bit weights everywhere too.
- "none": full 8-bit range everywhere: for deployment on CPUs with VNNI (AVX512_VNNI / AVX-VNNI) and
  on ARM; without VNNI it saturates (the Conv-4-MP above: NNCF INT8 66.72 %).
The choice is recorded in the manifest with each INT8 artifact.

Accuracy control (`max_drop`, in top-1 percentage points): nncf.quantize_with_accuracy_control
reverts the most harmful layers to float until the drop on a validation set is ≤ max_drop. The
validation set is training images disjoint from the calibration images (never the test split, so
nothing is selected on the test set). NNCF compiles the models it validates itself, at the device's
default inference precision (bf16 on CPUs with AVX512_BF16); the manifest's validation figures are
recomputed here in f32. onnxruntime has no accuracy-controlled quantisation: for ONNX INT8 the
option is not applied, and the manifest (and the CLI) say so.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from collections.abc import Callable

import numpy as np

from ..atomic import atomic_write
from ..errors import UserError, one_line
from .plan import OVERFLOW_FIXES
from .quiet import quiet

_NOISY = ("nncf", "onnxruntime", "torch.utils.cpp_extension", "root")  # loggers silenced while quantising

CALIBRATION_SEED = 0
ORT_CALIBRATION_BATCH = 32


def sample_indices(n_total: int, n: int, *, seed: int = CALIBRATION_SEED, skip: int = 0) -> np.ndarray:
    """Indices `skip`..`skip+n` of a fixed-seed permutation of range(n_total), sorted (deterministic).

    skip=0 gives the calibration set; skip=N gives images disjoint from a calibration set of N.
    """
    perm = np.random.default_rng(seed).permutation(n_total)
    return np.sort(perm[skip: skip + n])


def quantize_openvino(model, calibration: np.ndarray, *, overflow_fix: str = "all",
                      max_drop: float | None = None,
                      validation: tuple[np.ndarray, np.ndarray] | None = None,
                      validate: Callable[[object, np.ndarray, np.ndarray], float] | None = None) -> tuple[object, dict]:
    """Quantise an in-memory ov.Model with NNCF; returns (quantised ov.Model, settings dict).

    `calibration` is a float32 NCHW array of prepared inputs. With `max_drop`, `validation`
    (inputs, labels) and `validate(compiled_model, inputs, labels) -> top-1 %` drive
    nncf.quantize_with_accuracy_control.
    """
    nncf = _nncf()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    fix = {"first-layer": OverflowFix.FIRST_LAYER, "all": OverflowFix.ENABLE, "none": OverflowFix.DISABLE}[
        _check_fix(overflow_fix)]
    calib = nncf.Dataset([calibration[i: i + 1] for i in range(len(calibration))])
    params = AdvancedQuantizationParameters(overflow_fix=fix)
    settings = {"tool": "nncf", "nncf": _version("nncf"), "preset": "performance (symmetric u8/s8)",
                "calibration_images": len(calibration), "overflow_fix": overflow_fix,
                "nncf_overflow_fix": fix.value, "fast_bias_correction": False}
    try:
        with quiet(*_NOISY):
            if max_drop is None:
                quantised = nncf.quantize(model, calib, preset=nncf.QuantizationPreset.PERFORMANCE,
                                          subset_size=len(calibration), fast_bias_correction=False,
                                          advanced_parameters=params)
                settings["accuracy_control"] = None
            else:
                if validation is None or validate is None:
                    raise ValueError("accuracy control needs validation data and a validate function")
                vx, vy = validation
                items = [(vx[i: i + 64], vy[i: i + 64]) for i in range(0, len(vx), 64)]
                val_ds = nncf.Dataset(items, lambda item: item[0])

                def validation_fn(compiled, data) -> float:
                    xs = [item[0] for item in data]
                    ys = [item[1] for item in data]
                    return validate(compiled, np.concatenate(xs), np.concatenate(ys))

                quantised = nncf.quantize_with_accuracy_control(
                    model, calib, val_ds, validation_fn, max_drop=max_drop, drop_type=nncf.DropType.ABSOLUTE,
                    preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calibration),
                    fast_bias_correction=False, advanced_quantization_parameters=params)
                settings["accuracy_control"] = {
                    "tool": "nncf.quantize_with_accuracy_control", "max_drop_points": max_drop,
                    "validation": f"{len(vx)} training images disjoint from the calibration images",
                    "validation_accuracy_fp32": _validate_model(model, vx, vy, validate),
                    "validation_accuracy_int8": _validate_model(quantised, vx, vy, validate),
                    "layers_kept_in_float": _float_layers(quantised)}
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"NNCF cannot quantise this model ({one_line(e)})") from None
    return quantised, settings


def quantize_onnx(onnx_path: str | Path, out_path: str | Path, calibration: np.ndarray, *,
                  overflow_fix: str = "all", metadata: dict[str, str] | None = None) -> dict:
    """onnxruntime static quantisation (QDQ, per-channel s8 weights, u8 activations, MinMax) of
    `onnx_path` into `out_path` (atomically); returns the settings dict."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx_export import set_metadata

    reduce_range = _check_fix(overflow_fix) != "none"  # no per-layer switch: "first-layer" → every layer
    out_path = Path(out_path)
    source = onnx.load(str(onnx_path))
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".ort-quant.") as tmp:
        pre, quantised = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        try:
            with quiet(*_NOISY):
                quant_pre_process(str(onnx_path), str(pre))
                quantize_static(str(pre), str(quantised), _Reader(calibration), quant_format=QuantFormat.QDQ,
                                per_channel=True, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        except Exception as e:
            raise UserError(f"{onnx_path}: onnxruntime cannot quantise this model ({one_line(e)})") from None
        proto = onnx.load(str(quantised))
    # Keep the source's description (classes, normalisation, recipe...) and say what changed.
    props = {p.key: p.value for p in source.metadata_props}
    props.update(metadata or {})
    props["precision"] = "int8"
    set_metadata(proto, props)
    atomic_write(out_path, lambda t: Path(t).write_bytes(proto.SerializeToString()))
    return {"tool": "onnxruntime.quantization.quantize_static", "onnxruntime": _version("onnxruntime"),
            "format": "QDQ", "activations": "u8 (asymmetric)", "weights": "s8 per-channel (symmetric)",
            "calibrate_method": "MinMax", "calibration_images": len(calibration), "overflow_fix": overflow_fix,
            "reduce_range": reduce_range, "preprocess": "quant_pre_process (shape inference + graph optimisation)",
            "accuracy_control": None}


def _validate_model(model, x: np.ndarray, y: np.ndarray, validate) -> float:
    """`validate` on `model` compiled for the CPU with f32 compute (as runtime.session does)."""
    from ..runtime.session import ov_core

    return validate(ov_core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"}), x, y)


def _float_layers(model) -> list[str]:
    """Convolutions/matmuls whose weights are not quantised (what accuracy control reverted, plus
    any the quantiser leaves in float): their weight input does not lead back to an int8 constant
    or a FakeQuantize within a few Convert/Subtract/Multiply/Reshape steps."""
    kept = []
    for op in model.get_ordered_ops():
        if op.get_type_name() not in ("Convolution", "GroupConvolution", "MatMul"):
            continue
        node, quantised = op.input_value(1).get_node(), False
        for _ in range(6):
            kind = node.get_type_name()
            integer = kind == "Constant" and node.get_output_element_type(0).get_type_name() in ("i8", "u8")
            if kind == "FakeQuantize" or integer:
                quantised = True
                break
            if kind == "Constant" or node.get_input_size() == 0:
                break
            node = node.input_value(0).get_node()
        if not quantised:
            kept.append(op.get_friendly_name())
    return kept


class _Reader:
    """onnxruntime CalibrationDataReader over a prepared float32 array, in fixed-size batches."""

    def __init__(self, data: np.ndarray, batch: int = ORT_CALIBRATION_BATCH):
        self.batches = [np.ascontiguousarray(data[i: i + batch]) for i in range(0, len(data), batch)]
        self.i = 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {"input": self.batches[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


def _check_fix(fix: str) -> str:
    if fix not in OVERFLOW_FIXES:
        raise UserError(f"--overflow-fix: unknown value {fix!r}; choose one of {', '.join(OVERFLOW_FIXES)}")
    return fix


def _nncf():
    with quiet(*_NOISY):  # importing nncf imports torch extensions, which log a CUDA warning on CPU machines
        import nncf

    nncf.set_log_level(logging.ERROR)
    return nncf


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
