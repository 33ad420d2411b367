"""What an export makes and how (ExportPlan), with the defaults and choices it is checked against.

The one home of those values: the pipeline and its pieces import them from here, and the CLI takes
its option defaults and choices from here. This module imports neither torch nor numpy, so the CLI
can read it at import time and `--help` stays instant. Every check of a plan happens here, once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

EXPORTERS = ("dynamo", "torchscript")  # torch.onnx's two exporters
DEFAULT_OPSET = 23  # the newest opset all of torch, onnxruntime and OpenVINO handle (export/onnx_export.py)
TORCHSCRIPT_MAX_OPSET = 20  # the TorchScript exporter's maximum, and its default
DYNAMO_MIN_OPSET = 18  # below this torch converts after export, which can silently fail
OVERFLOW_FIXES = ("all", "first-layer", "none")  # INT8 saturation remedies (export/quantize.py says which does what)
DEFAULT_CALIBRATION = 300  # INT8 calibration images
PARITY_IMAGES = 256  # test images each artifact is compared with PyTorch on (export/parity.py)
MIN_TOP1_AGREEMENT = 90.0  # % top-1 agreement with PyTorch an FP16 / INT8 artifact needs
INT8_REWRITES = ("pad-input-channels",)  # export/rewrites.py's own, for the graph the INT8 artifacts are quantised from
# optional extra (pyproject.toml) → the modules its export needs: pnnx converts to ncnn, ncnn proves the result
NEEDS = {"ncnn": ("pnnx", "ncnn"), "executorch": ("executorch", "torchao")}


def resolve_opset(exporter: str, opset: int | None) -> int:
    """The opset to write: `opset` checked against what `exporter` can write, or its default."""
    if exporter not in EXPORTERS:
        raise UserError(f"--exporter: unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    if opset is None:
        return DEFAULT_OPSET if exporter == "dynamo" else TORCHSCRIPT_MAX_OPSET
    if exporter == "torchscript" and not 9 <= opset <= TORCHSCRIPT_MAX_OPSET:
        raise UserError(f"--opset: the torchscript exporter writes opsets 9..{TORCHSCRIPT_MAX_OPSET}, got {opset}")
    if exporter == "dynamo" and not DYNAMO_MIN_OPSET <= opset <= DEFAULT_OPSET:
        raise UserError(f"--opset: the dynamo exporter writes opsets {DYNAMO_MIN_OPSET}..{DEFAULT_OPSET} "
                        f"(onnxruntime and OpenVINO checked up to {DEFAULT_OPSET}), got {opset}")
    return opset


@dataclass(frozen=True)
class ExportPlan:
    """What to export and how; checked once, here, for the CLI and for library callers alike.

    onnx → model_fp32.onnx (+ model_int8.onnx with int8); openvino → model_fp32.xml/.bin
    (+ model_fp16.xml with fp16, model_int8.xml with int8). OpenVINO IRs are converted from the
    FP32 .onnx file, which is built either way (kept only with `onnx`). ncnn → model_fp32.ncnn.param/.bin
    (+ model_fp16.ncnn.param with fp16; no INT8: ncnn's INT8 tools are in no wheel); executorch →
    model_fp32.pte (+ model_int8.pte with int8); both converted from the PyTorch module (pnnx, torch.export),
    each with a sidecar `.json` of its metadata, and each needs its optional extra (NEEDS).
    """

    onnx: bool = True
    openvino: bool = False
    ncnn: bool = False
    executorch: bool = False
    fp16: bool = False
    int8: bool = False
    opset: int | None = None  # None: the exporter's default (resolve_opset), set here
    exporter: str = "dynamo"
    calib: int = DEFAULT_CALIBRATION
    max_drop: float | None = None  # INT8 accuracy control (NNCF, OpenVINO only), in top-1 points
    bake_normalisation: bool = False
    parity_images: int = PARITY_IMAGES
    min_agreement: float = MIN_TOP1_AGREEMENT
    overflow_fix: str = "all"
    rewrite: bool = True  # export the faster equivalent form (export/rewrites.py), proven against the original
    rewrites: tuple[str, ...] | None = None  # with rewrite: only these (None: all the model offers, and INT8's)

    def __post_init__(self) -> None:
        self._check_artifacts()
        self._check_numbers()
        if self.overflow_fix not in OVERFLOW_FIXES:
            raise UserError(f"--overflow-fix: choose one of {', '.join(OVERFLOW_FIXES)}, got {self.overflow_fix!r}")
        object.__setattr__(self, "opset", resolve_opset(self.exporter, self.opset))  # checked before any work
        if self.rewrites is not None:
            if not self.rewrite:
                raise UserError("rewrites: naming the rewrites to apply needs rewrite on")
            object.__setattr__(self, "rewrites", tuple(self.rewrites))

    @property
    def model_rewrites(self) -> tuple[str, ...] | None:
        """The model's own rewrites asked for (export/rewrites.rewrite_for_export's `rewrites`; None: all)."""
        return None if self.rewrites is None else tuple(r for r in self.rewrites if r not in INT8_REWRITES)

    @property
    def pad_int8_input(self) -> bool:
        """Whether the INT8 artifacts are quantised from the graph with its image input padded (a rewrite)."""
        return self.rewrite and self.int8 and (self.rewrites is None or INT8_REWRITES[0] in self.rewrites)

    def _check_artifacts(self) -> None:
        if not (self.onnx or self.openvino or self.ncnn or self.executorch):
            raise UserError("nothing to export: choose --onnx, --openvino, --ncnn and/or --executorch")
        if self.fp16 and not (self.openvino or self.ncnn):
            raise UserError("--fp16 makes an OpenVINO IR or an ncnn graph with FP16 weights: add --openvino or --ncnn")
        if self.int8 and not (self.onnx or self.openvino or self.executorch):
            raise UserError("--int8: ncnn artifacts are FP32/FP16 only (its INT8 tools are in no wheel); "
                            "add --onnx, --openvino or --executorch")
        if self.max_drop is not None and not self.int8:
            raise UserError("--max-drop controls INT8 quantisation: add --int8")

    @property
    def needs(self) -> dict[str, tuple[str, ...]]:
        """The optional extras this plan needs: extra → the modules it installs (checked before any work)."""
        return {extra: modules for extra, modules in NEEDS.items() if getattr(self, extra)}

    def require_installed(self) -> None:
        """One UserError naming what to install when an optional extra this plan needs is missing: said before
        any work, not as an import traceback after the ONNX export."""
        import importlib.util

        for extra, modules in self.needs.items():
            missing = [m for m in modules if importlib.util.find_spec(m) is None]
            if missing:
                verb = "is" if len(missing) == 1 else "are"
                raise UserError(f"--{extra} needs {' and '.join(missing)}, which {verb} not installed here: "
                                f"pip install -e '.[{extra}]' (in the clone), or pip install {' '.join(missing)}")

    def _check_numbers(self) -> None:
        if self.calib < 1 or self.parity_images < 1:
            raise UserError(f"--calib and --parity-images: at least one image each, got {self.calib} and "
                            f"{self.parity_images}")
        if self.max_drop is not None and not self.max_drop > 0:
            raise UserError(f"--max-drop: a top-1 drop in points > 0, got {self.max_drop:g}")
        if not 0 <= self.min_agreement <= 100:
            raise UserError(f"--min-agreement: a top-1 agreement in percent, 0..100, got {self.min_agreement:g}")
