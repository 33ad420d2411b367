"""Timing loops: warm up, time each call with perf_counter_ns, summarise with robust statistics.

    times = time_calls(lambda: session.run(x), warmup=20, seconds=2.0)
    stats = summarize(times)          # {"median_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", ...}

Every call is timed on its own (no averaging inside the loop), so the distribution's tail is kept:
on a shared machine the median and the minimum say what the code costs, p90/p99 what the neighbours
cost. The garbage collector is paused while timing (a collection inside a 0.4 ms call would be
charged to the model). Percentiles interpolate linearly between order statistics (numpy's default,
"type 7"): for sorted values v[0..n-1], the q-th percentile sits at rank r = q/100 · (n-1), and is
v[floor(r)] + (r - floor(r)) · (v[floor(r)+1] - v[floor(r)]).

`interleave` runs several candidates round-robin, so slow drifts of the machine's load hit every
candidate alike; compare them by the median over rounds and by ratios, not by one-off numbers.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence

import numpy as np

NS_PER_MS = 1_000_000


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0 ≤ q ≤ 100) by linear interpolation between order statistics."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must lie in [0, 100], got {q}")
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0:
        raise ValueError("percentile: no values")
    rank = q / 100.0 * (v.size - 1)
    lo = int(math.floor(rank))
    hi = min(lo + 1, v.size - 1)
    return float(v[lo] + (rank - lo) * (v[hi] - v[lo]))


def summarize(times_ns: Sequence[int] | np.ndarray) -> dict[str, float | int]:
    """Latency statistics in milliseconds of per-call times given in nanoseconds."""
    t = np.asarray(times_ns, dtype=np.float64) / NS_PER_MS
    if t.size == 0:
        raise ValueError("summarize: no timings")
    return {
        "median_ms": percentile(t, 50),
        "mean_ms": float(t.mean()),
        "p90_ms": percentile(t, 90),
        "p99_ms": percentile(t, 99),
        "min_ms": float(t.min()),
        "max_ms": float(t.max()),
        "std_ms": float(t.std(ddof=1)) if t.size > 1 else 0.0,
        "iters": int(t.size),
    }


def time_calls(fn: Callable[[], object], *, warmup: int = 10, seconds: float | None = None,
               iters: int | None = None, min_iters: int = 5, max_iters: int = 1_000_000) -> np.ndarray:
    """Per-call wall times (ns, int64) of `fn()`, after `warmup` untimed calls.

    Exactly one of `seconds` (time budget: keep calling until it is spent, at least `min_iters`
    calls, at most `max_iters`) or `iters` (a fixed count) must be given.
    """
    if (seconds is None) == (iters is None):
        raise ValueError("time_calls: give exactly one of seconds= or iters=")
    if iters is not None and iters < 1:
        raise ValueError(f"time_calls: iters must be >= 1, got {iters}")
    if seconds is not None and seconds <= 0:
        raise ValueError(f"time_calls: seconds must be > 0, got {seconds}")
    for _ in range(max(0, warmup)):
        fn()
    clock = time.perf_counter_ns
    out: list[int] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        if iters is not None:
            for _ in range(iters):
                t0 = clock()
                fn()
                out.append(clock() - t0)
        else:
            deadline = clock() + int(seconds * 1e9)
            while len(out) < max_iters:
                t0 = clock()
                fn()
                t1 = clock()
                out.append(t1 - t0)
                if t1 >= deadline and len(out) >= min_iters:
                    break
    finally:
        if gc_was_enabled:
            gc.enable()
    return np.asarray(out, dtype=np.int64)


def measure_latency(run: Callable[[np.ndarray], object], x: np.ndarray, *, warmup: int = 10,
                    seconds: float | None = None, iters: int | None = None) -> dict[str, float | int]:
    """Latency statistics of `run(x)` (one call = one batch of len(x))."""
    return summarize(time_calls(lambda: run(x), warmup=warmup, seconds=seconds, iters=iters))


def measure_throughput(run: Callable[[np.ndarray], object], x: np.ndarray, *, warmup: int = 3,
                       seconds: float | None = None, iters: int | None = None) -> dict[str, float | int]:
    """Images per second at batch len(x): batch / median call time (plus the call statistics)."""
    stats = summarize(time_calls(lambda: run(x), warmup=warmup, seconds=seconds, iters=iters, min_iters=3))
    batch = int(x.shape[0])
    return {"batch": batch, "images_per_s": batch / (stats["median_ms"] / 1000.0),
            "median_ms": stats["median_ms"], "iters": stats["iters"]}


@dataclass
class Interleaved:
    """Per-candidate timings of an interleaved run: all calls, and each round's median."""

    times_ns: dict[str, np.ndarray]  # every timed call, all rounds concatenated
    round_medians_ms: dict[str, list[float]]

    def summary(self, name: str) -> dict[str, float | int]:
        s = summarize(self.times_ns[name])
        s["median_of_round_medians_ms"] = float(np.median(self.round_medians_ms[name]))
        s["rounds"] = len(self.round_medians_ms[name])
        return s

    def ratio(self, a: str, b: str) -> float:
        """median(a) / median(b) over all calls: > 1 means a is slower."""
        return float(np.median(self.times_ns[a]) / np.median(self.times_ns[b]))


def interleave(candidates: Mapping[str, Callable[[], object]], *, rounds: int = 5, warmup: int = 10,
               seconds: float | None = None, iters: int | None = None,
               setup: Mapping[str, Callable[[], object]] | None = None, pause: float = 0.0,
               on_round: Callable[[int, str], None] | None = None) -> Interleaved:
    """Time every candidate once per round, round-robin (the order rotates each round), `rounds` times.

    Each candidate is warmed up once before the first round (and with 2 calls at the start of each
    round, to refill its caches after the others ran). `setup[name]()`, when given, runs untimed
    before each of that candidate's blocks (e.g. torch.set_num_threads, a process-wide setting).
    `pause` seconds of sleep between blocks let a multi-threaded candidate's spinning workers go idle
    before the next one is timed.
    """
    names = list(candidates)
    setup = setup or {}
    for name in names:
        if name in setup:
            setup[name]()
        for _ in range(max(0, warmup)):
            candidates[name]()
    times: dict[str, list[np.ndarray]] = {n: [] for n in names}
    medians: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if on_round:
                on_round(r, name)
            if name in setup:
                setup[name]()
            t = time_calls(candidates[name], warmup=2, seconds=seconds, iters=iters)
            if pause > 0:
                time.sleep(pause)
            times[name].append(t)
            medians[name].append(float(np.median(t)) / NS_PER_MS)
    return Interleaved({n: np.concatenate(times[n]) for n in names}, medians)


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS does not report them)."""
    try:
        import os

        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None

