"""What a benchmark measures (BenchConfig), with the defaults and choices it is checked against.

The one home of those values: runtime/bench.py measures with a config, and the CLI takes its option
defaults from here. This module imports neither torch nor numpy, so the CLI can read it at import time.
Every check happens here, once; a bad value is a ConfigError naming the field (the CLI renames it to
the option the user typed).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..schema import ConfigError
from . import hardware
from .backends import BACKENDS

PRECISIONS = ("fp32", "fp16", "int8")
SHAPES = ("static", "dynamic")
OV_COMPUTE = ("f32", "bf16", "auto")  # auto: f32, and bf16 where this CPU computes it natively
DEFAULT_SECONDS = 2.0


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. Values are checked here, for library callers and the CLI alike."""

    backends: tuple[str, ...] = BACKENDS
    precisions: tuple[str, ...] = PRECISIONS
    threads: tuple[int, ...] = (1,)
    batch: int = 1
    throughput_batch: int = 64  # 0: no throughput measurement
    seconds: float | None = None  # time budget per latency measurement (DEFAULT_SECONDS when neither) ...
    iters: int | None = None  # ... or a fixed number of timed calls
    warmup: int = 20
    shapes: tuple[str, ...] = SHAPES
    # OpenVINO inference precisions to run each IR at: "f32", "bf16", or "auto" (resolved below to f32, plus bf16
    # where the CPU computes it natively). The library's default is f32 only (the CLI's is auto; sweeps keep f32).
    ov_compute: tuple[str, ...] = ("f32",)
    accuracy: bool = True
    sgemm: bool = True  # measure the FP32 matmul rate (about a second)

    def __post_init__(self) -> None:
        for name, allowed in (("backends", BACKENDS), ("precisions", PRECISIONS), ("shapes", SHAPES),
                              ("ov_compute", OV_COMPUTE)):
            values = getattr(self, name)
            if not values or any(v not in allowed for v in values):
                raise ConfigError(name, f"one or more of {', '.join(allowed)}", ",".join(map(str, values)))
        if "auto" in self.ov_compute:  # resolved once, here: the artifact list and the choice see f32/bf16 only
            auto = ("f32", "bf16") if hardware.native_bf16() else ("f32",)
            object.__setattr__(self, "ov_compute", tuple(dict.fromkeys(
                c for v in self.ov_compute for c in (auto if v == "auto" else (v,)))))
        self._check_numbers()

    def _check_numbers(self) -> None:
        if not self.threads or any(t < 1 for t in self.threads):
            raise ConfigError("threads", "positive integers", ",".join(map(str, self.threads)))
        for name, least in (("batch", 1), ("throughput_batch", 0), ("iters", 1), ("warmup", 0)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise ConfigError(name, f"an integer >= {least}", value)
        if self.seconds is not None and not self.seconds > 0:
            raise ConfigError("seconds", "a time budget > 0", self.seconds)
        if self.seconds is not None and self.iters is not None:
            raise ConfigError("seconds, iters", "one of them, not both (they exclude each other: give one)")

    @property
    def budget(self) -> tuple[float | None, int | None]:
        """(seconds, iters) of one latency measurement: the default time budget when neither is set."""
        if self.seconds is None and self.iters is None:
            return DEFAULT_SECONDS, None
        return self.seconds, self.iters
