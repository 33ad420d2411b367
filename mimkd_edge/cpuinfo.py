"""/proc/cpuinfo, read and split into its per-processor blocks of `key: value` fields.

One parser for the two places that need the CPU: run provenance (`provenance.cpu_name`, which CPU a
run computed on) and the hardware model of the benchmarks (`runtime/hardware.py`, peaks and bounds).
"""

from __future__ import annotations

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
