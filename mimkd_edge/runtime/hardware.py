"""The CPU a benchmark ran on, its FP32 peak (estimated from the ISA, and measured), and FLOP bounds.

Two peaks, never confused:

- **estimated** (``peak_source = "estimated from ISA"``): flops per cycle per core from the vector
  ISA and the microarchitecture, times the clock /proc/cpuinfo reports:

      peak = FMA units × FP32 lanes per unit × 2 flops per FMA × GHz        (per core)

  AVX2+FMA (Haswell … Zen 3): 2 units × 8 lanes × 2 = 32 flops/cycle. AVX-512 on Intel server
  parts: 2 × 16 × 2 = 64 (some SKUs fuse only one 512-bit unit: then 32; we cannot tell from
  /proc/cpuinfo and assume 2). AVX-512 on AMD Zen 4 (family 0x19) runs 512-bit ops on 256-bit
  datapaths: 32, as AVX2. Zen 5 (family 0x1A) has full 512-bit datapaths: 64. AVX without FMA:
  one 8-lane add + one 8-lane multiply = 16. SSE only: 8. The clock: measured where possible (below),
  else cpufreq's maximum, else what /proc/cpuinfo reports (in a VM often the base/TSC frequency,
  below the turbo clock the core really runs at, which makes the bound too loose).

- **clock probe** (Linux x86-64): a chain of 128 dependent ``imul rax, rax`` per loop iteration
  (3 cycles each on Intel's big cores since Nehalem and on every AMD Zen; Atom-class cores take
  longer, which reads low and only loosens the bound) in a few bytes of machine
  code, run through ctypes; the best of many short runs gives cycles per second. Not an add chain
  (``add rax, 1``, our earlier probe): a Sapphire Rapids-class Xeon ran it far faster than one add
  per cycle (recent Intel cores can resolve add-immediate chains early, at rename) and it read
  23.7 GHz on a part reporting 2.6 GHz, making every bound there 7–9× too tight. A multiply is not
  eliminated that way. A reading outside 0.3–6.5 GHz is still refused (``probe_refused``) and the
  reported clock used. Where the probe cannot run (another ISA or OS, or no executable memory), the
  reported clock is used and the record says so.

- **measured** (``peak_source = "measured sgemm"``): the best of a few timed square fp32 matrix
  products (n = 512, torch's BLAS and numpy's, one thread). What a well-tuned BLAS achieves here,
  now: under background load it reads lower than the machine's peak, and a convolution library can
  beat it, so it is a floor for the achievable peak, not a ceiling.

A model's FLOP bound is the time its multiply-accumulates take at peak: ``2·MACs / peak``, with the MACs
a *direct* convolution does (models/cost.py). It is a lower bound for FP32 inference by direct or
im2col convolution (memory traffic, non-conv layers and framework overhead only add to it), not for a
Winograd kernel, which computes a 3×3 convolution with fewer multiplications (ncnn does: it can run
below this bound, above 100 % of it); `% of bound = bound / measured latency` (100 % means running at
peak). INT8 kernels are not held to the FP32 peak: their own bound uses the integer dot-product rate
(`int8_ops_per_cycle`, also an estimate from the ISA); bf16 compute likewise (`bf16_flops_per_cycle`). On CPUs with AMX
(Sapphire Rapids and later) those rates are the tile unit's, not the vector units': OpenVINO runs
its INT8 and bf16 convolutions there (exec types ``brgconv_avx512_amx_*`` in its counters), and a
bound from the vector rate would be 8× too loose (INT8 and bf16 alike) to be a bound.
"""

from __future__ import annotations

import os
import platform
import struct
import sys
import time
from typing import Any

from ..cpuinfo import cpuinfo_blocks, read_cpuinfo, read_system_file

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, vendor, family, cores and ISA flags from the text of /proc/cpuinfo (x86 layout)."""
    procs = cpuinfo_blocks(text)
    first = procs[0] if procs else {}
    flags = set(first.get("flags", first.get("Features", "")).split())
    cores = {(p.get("physical id", "0"), p.get("core id", str(i))) for i, p in enumerate(procs)}
    mhz = [float(p["cpu MHz"]) for p in procs if _is_float(p.get("cpu MHz"))]

    def as_int(v: str | None) -> int | None:
        try:
            return int(v, 0) if v is not None else None
        except ValueError:
            return None

    return {
        "model": first.get("model name") or first.get("Hardware") or platform.processor() or "unknown",
        "vendor": first.get("vendor_id"),
        "family": as_int(first.get("cpu family")),
        "model_number": as_int(first.get("model")),
        "logical_cpus": len(procs) or None,
        "physical_cores": len(cores) if procs else None,
        "hypervisor": "hypervisor" in flags,
        "isa": [f for f in ISA_FLAGS if f in flags],
        "mhz_reported": mhz,
    }


def _is_float(v: str | None) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


def frequency_probe(measure: bool = True) -> dict[str, Any]:
    """Clock readings: /proc/cpuinfo "cpu MHz" (every CPU) and cpufreq's current/maximum where the
    kernel exposes them (VMs often do not), all *reported*; plus, with `measure`, the multiply-chain probe's
    *measured* clock under "probe" (None where it cannot run; a record with "probe_refused" and no
    "ghz" where its reading was implausible)."""
    info = parse_cpuinfo(read_cpuinfo())
    mhz = info["mhz_reported"]
    out: dict[str, Any] = {"source": "/proc/cpuinfo cpu MHz (reported by the kernel)",
                           "mhz_min": min(mhz) if mhz else None, "mhz_max": max(mhz) if mhz else None}
    cur = read_system_file("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").strip()
    top = read_system_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    out["cpufreq_cur_mhz"] = int(cur) / 1000 if cur.isdigit() else None
    out["cpufreq_max_mhz"] = int(top) / 1000 if top.isdigit() else None
    out["probe"] = clock_probe() if measure else None
    return out


_CHAIN = 128  # dependent multiplies per loop iteration of the clock probe
_IMUL_LATENCY = 3  # cycles of `imul r64, r64` (Intel since Nehalem, AMD Zen 1-5)
PLAUSIBLE_GHZ = (0.3, 6.5)  # a probe reading outside this range is refused


def _imul_chain_code() -> bytes:
    """x86-64 SysV: void f(uint64 n) { repeat n times: 128 × `imul rax, rax` }."""
    code = bytearray(b"\x48\x89\xf9")  # mov rcx, rdi
    loop = len(code)
    code += b"\x48\x0f\xaf\xc0" * _CHAIN  # imul rax, rax (each depends on the previous)
    code += b"\x48\xff\xc9"  # dec rcx
    code += b"\x0f\x85" + struct.pack("<i", loop - (len(code) + 6))  # jnz loop
    code += b"\xc3"  # ret
    return bytes(code)


def clock_probe(loops: int = 12_000, repeats: int = 60) -> dict[str, Any] | None:
    """Measured core clock (GHz) from a dependent multiply chain: best of `repeats` runs of
    `loops` × 128 multiplies (about 1.3 ms each at 3.5 GHz), after ~50 ms of the same chain to bring
    the core to its clock. None where it cannot run here, or {"probe_refused": ...} when the reading
    is not a plausible clock."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        import ctypes
        import mmap

        code = _imul_chain_code()
        mem = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        mem.write(code)
        fn = ctypes.CFUNCTYPE(None, ctypes.c_uint64)(ctypes.addressof(ctypes.c_char.from_buffer(mem)))
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    fn(loops * 40)  # warm-up: let the governor raise the clock
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn(loops)
        dt = time.perf_counter_ns() - t0
        best = dt if best is None or dt < best else best
    del fn
    return clock_reading(loops * _CHAIN * _IMUL_LATENCY / best, loops, repeats)


def clock_reading(ghz: float, loops: int, repeats: int) -> dict[str, Any]:
    """The probe's record: its clock, or why it was refused (then `ghz` is absent and the reported
    clock is used)."""
    method = (f"dependent multiply chain ({_CHAIN} × imul r64, {_IMUL_LATENCY} cycles each, × {loops} loops), "
              f"best of {repeats} runs")
    low, high = PLAUSIBLE_GHZ
    if not low <= ghz <= high:
        return {"probe_refused": f"read {ghz:.3f} GHz, outside the plausible {low}-{high} GHz", "method": method}
    return {"ghz": round(ghz, 3), "method": method, "label": "measured"}


def flops_per_cycle(isa: list[str], vendor: str | None = None, family: int | None = None) -> tuple[int, str]:
    """FP32 flops per cycle per core, and the reasoning (see the module docstring)."""
    have = set(isa)
    if "avx512f" in have:
        if vendor == "AuthenticAMD" and family is not None and family < 0x1A:
            return 32, "AVX-512 on AMD Zen 4 (256-bit datapaths): 2 FMA × 8 lanes × 2"
        if vendor == "AuthenticAMD":
            return 64, "AVX-512 on AMD Zen 5 (512-bit datapaths): 2 FMA × 16 lanes × 2"
        return 64, "AVX-512: 2 FMA units × 16 lanes × 2 (assumed 2 units; some SKUs have 1)"
    if "avx2" in have and "fma" in have:
        return 32, "AVX2+FMA: 2 FMA units × 8 lanes × 2"
    if "avx" in have:
        return 16, "AVX without FMA: 8-lane add + 8-lane multiply per cycle"
    return 8, "SSE: 4-lane add + 4-lane multiply per cycle"


AMX_INT8_OPS_PER_CYCLE = 2048  # TDPBUSD: 16×64 · 64×16 u8/s8 tiles = 16,384 MACs per 16 cycles, per core
AMX_BF16_FLOPS_PER_CYCLE = 1024  # TDPBF16PS: 16×32 · 32×16 bf16 tiles = 8,192 MACs per 16 cycles, per core


def int8_ops_per_cycle(isa: list[str], fp32_flops_per_cycle: int) -> tuple[float, str]:
    """INT8 ops (2 per u8×s8 multiply-accumulate) per cycle per core, from the ISA: an estimate, used
    for the INT8 bound (2·MACs / (ops per cycle × GHz)).

    AMX (amx_int8): the tile unit, 1024 MACs per cycle whatever the vector units are (32× AVX-512's
    64 FP32 flops). Otherwise the vector units, relative to their FP32 FMA rate (same width, same
    ports): VNNI (AVX512_VNNI or AVX-VNNI), one vpdpbusd does 4 u8×s8 products per 32-bit lane where
    an FMA does 1: 4×. AVX2 without VNNI: vpmaddubsw + vpmaddwd + vpaddd do 4 products per 32-bit
    lane in 3 instructions: 4/3×. Older: no integer advantage assumed (1×).
    """
    have = set(isa)
    if "amx_int8" in have:
        return AMX_INT8_OPS_PER_CYCLE, ("AMX: TDPBUSD on the tile unit, 1024 u8×s8 MACs per cycle per core "
                                        "(the vector units' VNNI would do 8× fewer)")
    if have & {"avx512_vnni", "avx_vnni"}:
        factor, why = 4.0, "VNNI: vpdpbusd, 4 u8×s8 MACs per 32-bit lane per instruction (4× the FP32 FMA rate)"
    elif "avx2" in have:
        factor, why = 4 / 3, "AVX2 without VNNI: vpmaddubsw+vpmaddwd+vpaddd, 4 MACs per lane in 3 instructions (1.33×)"
    else:
        factor, why = 1.0, "no integer dot-product instructions assumed (1×)"
    return factor * fp32_flops_per_cycle, why


def bf16_flops_per_cycle(isa: list[str], fp32_flops_per_cycle: int) -> tuple[float | None, str]:
    """bf16 flops per cycle per core, from the ISA (None where bf16 is emulated: no bound).

    AMX (amx_bf16): the tile unit, 512 MACs = 1024 flops per cycle (16× AVX-512's FP32 rate).
    AVX512_BF16 alone: vdpbf16ps does 2 bf16 products per 32-bit lane where an FMA does 1: 2× FP32.
    """
    have = set(isa)
    if "amx_bf16" in have:
        return AMX_BF16_FLOPS_PER_CYCLE, "AMX: TDPBF16PS on the tile unit, 512 bf16 MACs per cycle per core"
    if "avx512_bf16" in have:
        return 2.0 * fp32_flops_per_cycle, ("AVX512_BF16: vdpbf16ps, 2 bf16 products per 32-bit lane per "
                                            "instruction (2× the FP32 rate)")
    return None, "no native bf16 (emulated): no bf16 bound"


def native_bf16() -> bool:
    """This CPU computes bf16 in hardware (AVX512_BF16 or AMX), from /proc/cpuinfo: OpenVINO's bf16
    hint is then a speed-up worth measuring; elsewhere bf16 is emulated."""
    return bf16_flops_per_cycle(parse_cpuinfo(read_cpuinfo()).get("isa", []), 1)[0] is not None


def estimated_peak(cpu: dict[str, Any], freq: dict[str, Any]) -> dict[str, Any]:
    """Peak FP32 FLOP/s per core estimated from ISA × clock; labelled as an estimate. The clock is the
    probe's measured one when there is one, else cpufreq's maximum, else /proc/cpuinfo's."""
    fpc, why = flops_per_cycle(cpu.get("isa", []), cpu.get("vendor"), cpu.get("family"))
    probe = freq.get("probe") or {}
    if probe.get("ghz"):
        ghz, clock = probe["ghz"], "measured clock"
    elif freq.get("cpufreq_max_mhz"):
        ghz, clock = freq["cpufreq_max_mhz"] / 1000, "cpufreq max clock"
    elif freq.get("mhz_max"):
        ghz, clock = freq["mhz_max"] / 1000, "clock reported by /proc/cpuinfo"
    else:
        return {"peak_source": "estimated from ISA", "flops_per_cycle": fpc, "formula": why,
                "ghz": None, "clock_source": None, "gflops_per_core": None}
    int8, int8_why = int8_ops_per_cycle(cpu.get("isa", []), fpc)
    bf16, bf16_why = bf16_flops_per_cycle(cpu.get("isa", []), fpc)
    return {"peak_source": "estimated from ISA", "flops_per_cycle": fpc,
            "formula": f"{why} × {ghz:.3f} GHz ({clock})", "ghz": round(ghz, 3), "clock_source": clock,
            "gflops_per_core": round(fpc * ghz, 2),
            "int8_factor": round(int8 / fpc, 3), "int8_formula": int8_why,  # factor: INT8 ops per FP32 flop
            "int8_gops_per_core": round(int8 * ghz, 2),
            "bf16_formula": bf16_why, "bf16_gflops_per_core": round(bf16 * ghz, 2) if bf16 else None}


def sgemm_probe(n: int = 512, repeats: int = 20, threads: int = 1) -> dict[str, Any]:
    """Measured FP32 matmul rate (GFLOP/s) at `threads` threads: n×n @ n×n, timed `repeats` times
    after a warm-up, through torch (MKL/oneDNN) and through numpy (its BLAS, usually OpenBLAS); the
    best run of either library is the figure (n = 512 keeps the operands near the core's cache, so
    neighbours on a shared L3 disturb it less). torch's thread count is restored afterwards. numpy's
    BLAS is pinned to `threads` with threadpoolctl where it is installed (it is not a dependency of
    this package); without it numpy is left out, since its BLAS would use every core."""
    import numpy as np
    import torch

    flops = 2.0 * n ** 3

    def timed(matmul) -> list[float]:
        matmul()
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            matmul()
            out.append((time.perf_counter_ns() - t0) / 1e9)
        return sorted(out)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        a, b, c = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g), torch.empty(n, n)
        t_torch = timed(lambda: torch.matmul(a, b, out=c))
    finally:
        torch.set_num_threads(before)
    rates = {"torch": flops / t_torch[0] / 1e9}
    t_numpy: list[float] = []
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        an, bn = a.numpy(), b.numpy()
        cn = np.empty((n, n), dtype=np.float32)
        with threadpool_limits(limits=threads, user_api="blas"):
            t_numpy = timed(lambda: np.matmul(an, bn, out=cn))
        rates["numpy"] = flops / t_numpy[0] / 1e9
    best_lib = max(rates, key=rates.get)
    times = t_torch if best_lib == "torch" else t_numpy
    return {"peak_source": "measured sgemm", "n": n, "threads": threads, "repeats": repeats, "library": best_lib,
            "gflops_best": round(rates[best_lib], 2), "gflops_median": round(flops / times[len(times) // 2] / 1e9, 2),
            "gflops_by_library": {k: round(v, 2) for k, v in rates.items()}}


def machine_info(*, sgemm: bool = True, clock: bool = True) -> dict[str, Any]:
    """What a benchmark records about the machine: CPU, ISA, clock, both peaks."""
    cpu = parse_cpuinfo(read_cpuinfo())
    cpu.pop("mhz_reported", None)
    freq = frequency_probe(measure=clock)
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    info: dict[str, Any] = {
        "cpu": cpu, "usable_cpus": affinity, "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(), "frequency": freq,
        "peak_estimated": estimated_peak(cpu, freq),
        "peak_measured": sgemm_probe() if sgemm else None,
    }
    return info


def flop_bound_ms(macs: int | float | None, gflops: float | None, batch: int = 1) -> float | None:
    """Time (ms) `batch` images of `macs` multiply-accumulates each take at `gflops` GFLOP/s."""
    if not macs or not gflops:
        return None
    return 2.0 * macs * batch / (gflops * 1e9) * 1e3


def percent_of_bound(bound_ms: float | None, latency_ms: float | None) -> float | None:
    """100 × bound / latency: the share of peak FP32 throughput a measured latency reaches."""
    if not bound_ms or not latency_ms:
        return None
    return 100.0 * bound_ms / latency_ms


def bounds(machine: dict, macs: int | None, batch: int, threads: int, median_ms: float | None,
           storage_precision: str | None) -> dict[str, float | None]:
    """The FLOP bounds of one measurement for `threads` cores (peak per core × min(threads, cores)),
    from the ISA-estimated and the sgemm-measured peaks, and the share of each the latency reached;
    INT8 rows also get the estimated INT8 bound. Keys are BenchRow's bound columns."""
    used = min(threads, machine.get("usable_cpus") or 1)
    est = (machine.get("peak_estimated") or {}).get("gflops_per_core")
    meas = (machine.get("peak_measured") or {}).get("gflops_best")
    int8 = (machine.get("peak_estimated") or {}).get("int8_gops_per_core")
    b_est = flop_bound_ms(macs, est * used if est else None, batch)
    b_meas = flop_bound_ms(macs, meas * used if meas else None, batch)
    out = {"bound_ms_est": b_est, "pct_bound_est": percent_of_bound(b_est, median_ms),
           "bound_ms_sgemm": b_meas, "pct_bound_sgemm": percent_of_bound(b_meas, median_ms)}
    if storage_precision == "int8" and int8:
        b_int8 = flop_bound_ms(macs, int8 * used, batch)
        out.update(bound_ms_int8_est=b_int8, pct_bound_int8_est=percent_of_bound(b_int8, median_ms))
    return out
