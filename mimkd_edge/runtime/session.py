"""One inference interface over PyTorch, ONNX Runtime, OpenVINO, ncnn and ExecuTorch.

    session = open_session("runs/x/export/model_fp32.onnx", "onnxruntime", threads=1)
    logits = session.run(x)            # x: float32 NCHW numpy array → float32 (N, classes) logits

What a session is fed is what its artifact expects: normalised images, or raw RGB scaled to [0, 1]
when normalisation was baked into the graph (`session.metadata["normalisation_baked"] == "true"`).

Backends and the artifacts they open:

- ``"torch"``: an ``nn.Module`` (put in eval mode here) or a run directory (its student is loaded).
  `threads` sets torch's global intra-op thread count (a process-wide setting).
- ``"onnxruntime"``: a ``.onnx`` file, CPU execution provider, ``intra_op_num_threads=threads``,
  ``inter_op_num_threads=1``, sequential execution. With `static_batch`, the free dimension named
  ``batch`` (our exports name it so) is fixed, so ORT plans for one shape.
- ``"openvino"``: a ``.xml`` IR (its ``.bin`` beside it) or a ``.onnx`` file, compiled for the CPU with
  ``INFERENCE_NUM_THREADS=threads``, ``PERFORMANCE_HINT=LATENCY``, ``NUM_STREAMS=1`` and
  ``INFERENCE_PRECISION_HINT=inference_precision``. With `static_batch`, the model is reshaped to
  ``(static_batch, C, H, W)`` before compiling (dynamic-shape IRs run slower on CPU).

- ``"ncnn"``: a ``.ncnn.param`` graph (its ``.ncnn.bin`` and sidecar ``.json`` beside it), runtime/ncnn_session.py.
- ``"executorch"``: a ``.pte`` program (its sidecar ``.json`` beside it), runtime/executorch_session.py.
  Both run a batch image by image (their graphs take one image) and need their optional extra.

With `static_batch`, ORT and OpenVINO also keep one input and one output buffer for the session's life
and copy into/out of them (ORT's I/O binding, OpenVINO's own request tensors): per call that is
~2 µs less in ORT and ~30 µs less in OpenVINO than handing each call's arrays over (measured on a
one-op graph, bench/results/latency.md); in OpenVINO that is about a fifth of Conv-4's whole inference.
The caller still gets a fresh array.

Precision is reported twice, because they differ: `precision` is how the weights are *stored*
(``fp32``, ``fp16``, ``int8``); `inference_precision` is what the kernels *compute* in, read back from
the runtime (OpenVINO's executed graph; an FP16 IR computes in f32 on most CPUs, and OpenVINO's own
default on CPUs with native bf16 is bf16, which is why this module asks for ``f32`` unless told
otherwise: ``inference_precision="auto"`` keeps the device's default).

An artifact may also be given as `ArtifactBytes`: its files already read (and hashed by the caller,
rundir.manifest.read_artifact). The session is then built from those bytes and never opens the files:
what was checked is what runs, even if a new export replaces them meanwhile. Such an ONNX graph must be
self-contained (no tensors in external files: there is no folder to resolve them against).

A file that is missing, truncated or otherwise unreadable raises `UserError` with one line that names
the file.
"""

from __future__ import annotations

import functools

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, one_line
from .backends import BACKENDS

BATCH_DIM = "batch"  # the name our ONNX exports give the dynamic batch axis


@dataclass(frozen=True)
class ArtifactBytes:
    """An artifact's files, read once and checked by the caller: what a session is built from so that
    the bytes verified are the bytes run."""

    path: Path  # the main file it was read from: for messages and its suffix
    model: bytes  # the .onnx graph, the IR's .xml, the ncnn .param or the .pte program
    weights: bytes | None = None  # the IR's or the ncnn graph's .bin
    sidecar: bytes | None = None  # the metadata JSON of a format without its own (runtime/sidecar.py)

    def __repr__(self) -> str:
        sizes = " + ".join(str(len(b)) for b in (self.model, self.weights, self.sidecar) if b is not None)
        return f"ArtifactBytes({str(self.path)!r}, {sizes} bytes)"


class Session(ABC):
    """A loaded model that maps a float32 NCHW batch to float32 logits.

    Attributes (read-only by convention):
        backend: "torch" | "onnxruntime" | "openvino" | "ncnn" | "executorch"
        precision: storage precision of the weights: "fp32" | "fp16" | "int8"
        inference_precision: what the kernels compute in: "fp32", "bf16", "int8", or a mix such as
            "int8+fp32" (quantised layers in int8, the rest in fp32)
        source: the artifact's path, or a description of the in-memory module
        input_name: the graph's input name ("input" for our exports)
        input_shape: (N, C, H, W) with None for dynamic axes
        threads: intra-op threads the session was opened with
        static_batch: the fixed batch size, or None when any batch size is accepted
        metadata: string key/values stored in the artifact (ONNX metadata_props, OpenVINO rt_info
            under "mimkd", the sidecar JSON of ncnn and ExecuTorch files); empty for torch modules
    """

    backend: str
    precision: str
    inference_precision: str
    source: str
    input_name: str
    input_shape: tuple[int | None, ...]
    threads: int
    static_batch: int | None
    metadata: dict[str, str]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) float32 for a float32 NCHW batch `x` (converted/contiguous if needed)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"{self.source}: expected an NCHW batch, got shape {x.shape}")
        if self.static_batch is not None and x.shape[0] != self.static_batch:
            raise ValueError(f"{self.source}: opened with static_batch={self.static_batch}, "
                             f"got a batch of {x.shape[0]}")
        return self._run(x)

    __call__ = run

    @abstractmethod
    def _run(self, x: np.ndarray) -> np.ndarray: ...

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source!r}, precision={self.precision}, "
                f"inference_precision={self.inference_precision}, threads={self.threads}, "
                f"static_batch={self.static_batch})")


def open_session(artifact: Any, backend: str, *, threads: int = 1, static_batch: int | None = None,
                 inference_precision: str = "f32") -> Session:
    """Open `artifact` (a path, or an nn.Module for "torch") on `backend`; see the module docstring.

    `inference_precision` applies to OpenVINO only ("f32", "bf16", "f16", or "auto" for the device
    default); ONNX Runtime's CPU provider computes fp32 (and int8 in quantised graphs) regardless.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if threads < 1:
        raise UserError(f"threads: must be >= 1, got {threads}")
    if static_batch is not None and static_batch < 1:
        raise UserError(f"static_batch: must be >= 1, got {static_batch}")
    if backend == "torch":
        return TorchSession(artifact, threads=threads, static_batch=static_batch)
    source = artifact if isinstance(artifact, ArtifactBytes) else _existing_file(artifact)
    path = source.path if isinstance(source, ArtifactBytes) else source
    if backend == "onnxruntime":
        if path.suffix != ".onnx":
            raise UserError(f"{path}: onnxruntime opens .onnx files (got {path.suffix or 'no suffix'})")
        return OrtSession(source, threads=threads, static_batch=static_batch)
    if backend == "ncnn":
        from .ncnn_session import NcnnSession

        return NcnnSession(source, threads=threads, static_batch=static_batch)
    if backend == "executorch":
        from .executorch_session import ExecutorchSession

        return ExecutorchSession(source, threads=threads, static_batch=static_batch)
    if path.suffix not in (".xml", ".onnx"):
        raise UserError(f"{path}: openvino opens .xml IRs or .onnx files (got {path.suffix or 'no suffix'})")
    return OpenVinoSession(source, threads=threads, static_batch=static_batch,
                           inference_precision=inference_precision)


# --------------------------------------------------------------------------------------------- torch


class TorchSession(Session):
    backend = "torch"

    def __init__(self, model: Any, *, threads: int = 1, static_batch: int | None = None):
        import torch

        if isinstance(model, (str, Path)):
            from ..rundir import load_run

            loaded = load_run(model)
            source, model = str(loaded.path), loaded.model
        elif isinstance(model, torch.nn.Module):
            source = f"<{type(model).__name__} module>"
        else:
            raise UserError(f"torch backend: expected an nn.Module or a run directory, got {type(model).__name__}")
        torch.set_num_threads(threads)
        self.model = model.eval()
        self.source, self.threads, self.static_batch = source, threads, static_batch
        dtypes = {p.dtype for p in model.parameters()}
        self.precision = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(next(iter(dtypes)), "fp32") \
            if len(dtypes) == 1 else "fp32"
        self.inference_precision = self.precision
        size = getattr(model, "input_size", None)
        self.input_name = "x"
        self.input_shape = (static_batch, getattr(model, "in_chans", 3), size, size)
        self.metadata = {}
        self._dtype = next(iter(model.parameters())).dtype if dtypes else torch.float32

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(torch.from_numpy(x).to(self._dtype))
        return out.float().numpy()


# ----------------------------------------------------------------------------------------- onnxruntime


class OrtSession(Session):
    backend = "onnxruntime"

    def __init__(self, source: Path | ArtifactBytes, *, threads: int = 1, static_batch: int | None = None):
        import onnxruntime as ort

        path, model = _onnx_source(source)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only: ORT's warnings would go to stderr
        if static_batch is not None:
            opts.add_free_dimension_override_by_name(BATCH_DIM, static_batch)
        try:
            self._sess = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise UserError(f"{path}: not a loadable ONNX model ({one_line(e)})") from None
        inp = self._sess.get_inputs()[0]
        self._out = self._sess.get_outputs()[0].name
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
        if static_batch is not None:
            self.input_shape = (static_batch, *self.input_shape[1:])
        self.source, self.threads, self.static_batch = str(path), threads, static_batch
        self.metadata = dict(self._sess.get_modelmeta().custom_metadata_map)
        self.precision = onnx_storage_precision(source)
        self.inference_precision = _ort_executed_precision(model, threads) if self.precision == "int8" else "fp32"

        self._bound: tuple[Any, np.ndarray, np.ndarray] | None = None  # (binding, input, output), static batch

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._bound is not None:
            binding, inp, out = self._bound
            np.copyto(inp, x)
            self._sess.run_with_iobinding(binding)
            return out.copy()
        y = self._sess.run([self._out], {self.input_name: x})[0]
        if self.static_batch is not None:  # the shapes never change again: bind buffers for every later call
            inp, out = np.empty_like(x), np.empty_like(y)
            binding = self._sess.io_binding()
            binding.bind_cpu_input(self.input_name, inp)
            binding.bind_output(self._out, "cpu", 0, out.dtype, out.shape, out.ctypes.data)
            self._bound = (binding, inp, out)
        return y


_ORT_INT_OPS = {"QLinearConv", "QGemm", "QLinearMatMul", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat",
                "DynamicQuantizeMatMul", "QLinearAdd", "NhwcQLinearConv"}
_ORT_FLOAT_OPS = {"Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"}


def _onnx_source(source: Path | ArtifactBytes) -> tuple[Path, str | bytes]:
    """(path for messages, what ORT loads): the file's path, or the bytes read, checked self-contained."""
    if not isinstance(source, ArtifactBytes):
        return source, str(source)
    _onnx_proto(source)  # refuses external data
    return source.path, source.model


def _ort_executed_precision(model: str | bytes, threads: int) -> str:
    """What ORT's CPU provider computes a quantised graph's convolutions/matmuls in, read from the
    graph it actually runs (QDQ groups fused into integer kernels, or left as float ops)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="mimkd-ort-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        opts.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        ops = [n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node]
    found = (["int8"] if any(op in _ORT_INT_OPS for op in ops) else []) + \
            (["fp32"] if any(op in _ORT_FLOAT_OPS for op in ops) else [])
    return "+".join(found) or "fp32"


def onnx_storage_precision(source: str | Path | ArtifactBytes) -> str:
    """"int8" when the graph holds quantise/dequantise or integer ops, "fp16" when its float weights
    are half precision, else "fp32" (read from the graph, without the weights' data)."""
    import onnx

    model = _onnx_proto(source)
    ops = {n.op_type for n in model.graph.node}
    if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}:
        return "int8"
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    float_types = {init.data_type for init in model.graph.initializer} & floats
    return "fp16" if float_types == {onnx.TensorProto.FLOAT16} else "fp32"


def _onnx_proto(source: str | Path | ArtifactBytes):
    """The graph of an .onnx file or of its bytes (whose tensors must all be inside: ONNX external data
    has no folder to be found in when the model comes from memory)."""
    import onnx

    path = source.path if isinstance(source, ArtifactBytes) else source
    try:
        if not isinstance(source, ArtifactBytes):
            return onnx.load(str(source), load_external_data=False)
        model = onnx.load_model_from_string(source.model)
    except Exception as e:
        raise UserError(f"{path}: not a loadable ONNX model ({one_line(e)})") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise UserError(f"{path}: its tensors are in external files; this tool runs self-contained ONNX models only")
    return model


# -------------------------------------------------------------------------------------------- openvino

@functools.cache
def ov_core():
    """One OpenVINO Core per process (creating one costs milliseconds and loads plugins)."""
    import openvino as ov

    return ov.Core()


_OV_PRECISIONS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "u8": "int8", "i8": "int8"}
_COMPUTE_LAYERS = {"Convolution", "FullyConnected", "MatMul", "Deconvolution", "GroupConvolution"}


class OpenVinoSession(Session):
    backend = "openvino"

    def __init__(self, source: Path | ArtifactBytes, *, threads: int = 1, static_batch: int | None = None,
                 inference_precision: str = "f32"):
        core = ov_core()
        path = source.path if isinstance(source, ArtifactBytes) else source
        model = _read_ov_model(core, source)
        self.metadata = _ov_metadata(model, onnx=path.suffix == ".onnx")
        self.precision = ov_storage_precision(model)
        if static_batch is not None:
            shape = model.input(0).get_partial_shape()
            dims = [static_batch] + [d.get_length() if d.is_static else -1 for d in list(shape)[1:]]
            if -1 in dims:
                raise UserError(f"{path}: cannot fix the batch size: the input's other axes are dynamic ({shape})")
            model.reshape(dims)
        config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if inference_precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        try:
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as e:
            raise UserError(f"{path}: OpenVINO cannot compile this model for the CPU ({one_line(e)})") from None
        self._request = self._compiled.create_infer_request()
        self._views: tuple[np.ndarray, np.ndarray] | None = None  # (input, output) of the request, static batch
        inp = self._compiled.input(0)
        self.input_name = inp.get_any_name()
        self.input_shape = tuple(d.get_length() if d.is_static else None for d in inp.get_partial_shape())
        self.source, self.threads, self.static_batch = str(path), threads, static_batch
        self.hint = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.inference_precision = self._executed_precision()

    def _executed_precision(self) -> str:
        """What the compute layers (convolutions, matmuls) of the executed graph run in, read from
        OpenVINO's runtime model: e.g. "fp32", "bf16", "int8", or "int8+fp32" when mixed."""
        found: list[str] = []
        for op in self._compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if "layerType" not in info or info["layerType"].astype(str) not in _COMPUTE_LAYERS:
                continue
            # The data input's type is what the kernel computes in (runtimePrecision reports the
            # weights' storage type for FP16-compressed IRs, whose kernels still run f32).
            data_type = op.input(0).get_element_type().get_type_name()
            p = _OV_PRECISIONS.get(data_type, data_type)
            if p not in found:
                found.append(p)
        if not found:
            return _OV_PRECISIONS.get(self.hint, self.hint)
        return "+".join(sorted(found, key=lambda p: (p != "int8", p)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._views is not None:
            inp, out = self._views
            np.copyto(inp, x)
            self._request.infer()
            return out.copy()
        if self.static_batch is None:
            self._request.infer({0: x}, share_inputs=True)
            return self._request.get_output_tensor(0).data.copy()
        # Static shapes: the request's own tensors keep their memory, so views of them stay valid.
        import openvino as ov

        inp = ov.Tensor(self._compiled.input(0).get_element_type(), ov.Shape(list(x.shape)))
        self._request.set_input_tensor(inp)
        np.copyto(inp.data, x)
        self._request.infer()
        self._input_tensor = inp  # owns the memory the input view points into
        self._views = (inp.data, self._request.get_output_tensor(0).data)
        return self._views[1].copy()


def _read_ov_model(core, source: Path | ArtifactBytes):
    """An IR (.xml with its .bin) or an .onnx graph, from its files or from the bytes read."""
    path = source.path if isinstance(source, ArtifactBytes) else source
    is_ir = path.suffix == ".xml"
    if isinstance(source, ArtifactBytes):
        if is_ir and source.weights is None:
            raise UserError(f"{path}: its weights file {path.with_suffix('.bin').name} was not read")
        if not is_ir:
            _onnx_proto(source)  # refuses external data
    elif is_ir and not path.with_suffix(".bin").is_file():
        raise UserError(f"{path}: its weights file {path.with_suffix('.bin').name} is missing")
    try:
        if isinstance(source, ArtifactBytes):
            return core.read_model(source.model, source.weights or b"")
        return core.read_model(str(path))
    except Exception as e:
        raise UserError(f"{path}: not a loadable OpenVINO model ({one_line(e)})") from None


def ov_storage_precision(model) -> str:
    """"int8" for quantised IRs (FakeQuantize or integer weights), "fp16" for FP16-compressed weights,
    else "fp32"."""
    weight_types = set()
    for op in model.get_ops():
        name = op.get_type_name()
        if name == "FakeQuantize":
            return "int8"
        if name == "Constant":
            weight_types.add(op.get_output_element_type(0).get_type_name())
    if weight_types & {"i8", "u8"}:
        return "int8"
    return "fp16" if "f16" in weight_types else "fp32"


def _ov_metadata(model, *, onnx: bool = False) -> dict[str, str]:
    """Our keys: an IR's rt_info under "mimkd"; an ONNX graph's metadata_props, which OpenVINO's ONNX
    reader puts under "framework" (the same keys: export/pipeline.py writes both)."""
    section = "framework" if onnx else "mimkd"
    try:
        rt = model.get_rt_info()
        if section not in rt:
            return {}
        return {k: v.astype(str) for k, v in rt[section].items()}
    except Exception:  # metadata is informative only; an IR without it is still usable
        return {}


# ------------------------------------------------------------------------------------------- helpers


def _existing_file(artifact: Any) -> Path:
    if not isinstance(artifact, (str, Path)):
        raise UserError(f"expected a path to an artifact, got {type(artifact).__name__}")
    path = Path(artifact)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    return path
