"""ExecuTorch sessions: an exported `.pte` program (its convolutions delegated to XNNPACK), run by the
`executorch` wheel's runtime (executorch.runtime.Runtime), which takes and returns torch tensors: it
needs torch where it runs.

The program is exported for one image (batch 1, the edge case), so a batch is run image by image, in
order. Threads: XNNPACK's threadpool is one per process (set only by this module); the session sets it
to `threads` before a call when another session left it elsewhere (executorch's `_unsafe_reset_threadpool`,
the only setting the wheel exposes; its log lines on stderr are silenced). The metadata is the sidecar JSON
(runtime/sidecar.py): a .pte has no place for ours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError, one_line
from .native_quiet import native_stderr_silenced
from .session import ArtifactBytes, Session
from .sidecar import parse_sidecar

PTE_SUFFIX = ".pte"
_NOISY = ("torch", "executorch")  # Python loggers that speak while executorch loads


class ExecutorchSession(Session):
    backend = "executorch"

    def __init__(self, source: Path | ArtifactBytes, *, threads: int = 1, static_batch: int | None = None):
        path = source.path if isinstance(source, ArtifactBytes) else source
        if path.suffix != PTE_SUFFIX:
            raise UserError(f"{path}: executorch opens .pte programs, got {path.suffix or 'no suffix'}")
        program = source.model if isinstance(source, ArtifactBytes) else path.read_bytes()
        self.metadata = parse_sidecar(source.sidecar if isinstance(source, ArtifactBytes) else None, path)
        self.precision = self.metadata.get("precision", "fp32")
        self.inference_precision = "int8" if self.precision == "int8" else "fp32"
        self.source, self.threads, self.static_batch = str(path), threads, static_batch
        with native_stderr_silenced(*_NOISY):
            import torch
            from executorch.runtime import Runtime

            _use_threads(threads)
            try:  # the program and its bytes stay referenced: the method reads the weights from them
                self._bytes, self._program = program, Runtime.get().load_program(program)
                self._method = self._program.load_method("forward")
            except (RuntimeError, ValueError) as e:
                raise UserError(f"{path}: not a loadable ExecuTorch program ({one_line(e)})") from None
        self._torch = torch
        meta = self._method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise UserError(f"{path}: a program with {meta.num_inputs()} inputs and {meta.num_outputs()} outputs; "
                            "expected one image input and the logits")
        sizes = tuple(meta.input_tensor_meta(0).sizes())
        if len(sizes) != 4 or sizes[0] != 1:
            raise UserError(f"{path}: its input has shape {sizes}; this tool exports programs for one (1, C, H, W) "
                            "image; export it again")
        self._classes = int(np.prod(meta.output_tensor_meta(0).sizes()))
        self.input_name = "input"
        self.input_shape = (static_batch, *sizes[1:])

    def _run(self, x: np.ndarray) -> np.ndarray:
        if _threadpool[0] != self.threads:
            _use_threads(self.threads)
        if len(x) == 1:  # the edge case, timed by bench: one call, no loop
            return self._method.execute((self._torch.from_numpy(x),))[0].numpy().copy()
        out = np.empty((len(x), self._classes), dtype=np.float32)
        for i in range(len(x)):  # the output tensor is the program's planned buffer: copied before the next call
            out[i] = self._method.execute((self._torch.from_numpy(x[i: i + 1]),))[0].numpy().reshape(-1)
        return out


_threadpool = [0]  # the thread count this module last set XNNPACK's threadpool to (0: not yet)


def _use_threads(threads: int) -> None:
    """XNNPACK's process-wide threadpool at `threads` (reset only when it is elsewhere: a session of another
    thread count ran last). Checked per call against what this module last set, not asked of the runtime:
    that query costs a call into the extension, a few µs of a 0.1 ms model."""
    from executorch.extension.pybindings import portable_lib

    if portable_lib._threadpool_get_thread_count() != threads:
        with native_stderr_silenced():
            portable_lib._unsafe_reset_threadpool(threads)
    _threadpool[0] = threads
