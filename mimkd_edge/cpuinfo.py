"""/proc/cpuinfo, read and split into its per-processor blocks of `key: value` fields.

One parser for the two places that need the CPU: run provenance (`provenance.cpu_name`, which CPU a
run computed on) and the hardware model of the benchmarks (`runtime/hardware.py`, peaks and bounds).
And what torch itself says of the CPU's bf16, for the training options that pick bf16 only where it is native.
"""

from __future__ import annotations

import functools
from pathlib import Path


def read_system_file(path: str | Path) -> str:
    """The text of a /proc or /sys file; "" where it cannot be read (other systems, containers)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def read_cpuinfo() -> str:
    return read_system_file("/proc/cpuinfo")


def cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    """One dict of fields per processor block (blank-line separated), keys and values stripped."""
    blocks = []
    for block in text.strip().split("\n\n"):
        if block.strip():
            fields = {}
            for line in block.splitlines():
                if ":" in line:
                    k, v = line.split(":", 1)
                    fields[k.strip()] = v.strip()
            blocks.append(fields)
    return blocks


@functools.cache
def torch_native_bf16() -> bool:
    """torch computes bf16 matmuls natively on this CPU (AVX-512 BF16 or AMX); elsewhere bf16 is emulated
    and slower than fp32, so the "auto" precisions of training (critics, teacher) stay fp32 there."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
