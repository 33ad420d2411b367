"""Where a result came from: package versions and the git commit, recorded beside every result."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from .cpuinfo import cpuinfo_blocks, read_cpuinfo

_PACKAGES = ("torch", "torchvision", "onnx", "onnxruntime", "openvino", "nncf", "ncnn", "pnnx", "executorch", "torchao",
             "numpy", "mimkd-edge")  # the optional runtimes (ncnn, pnnx, executorch, torchao) read None where absent


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


ARITHMETIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_name(cpuinfo: str | None = None) -> str | None:
    """The CPU a run computed on, as /proc/cpuinfo names it, with its family/model and the ISA flags that
    change which kernels (so which float roundings) torch picks: a recipe and a seed repeat a run
    exactly on the same CPU only — on another one the same seed's run ends a few tenths of a point and
    a few thousandths of a nat away (issue 17's note). None where /proc/cpuinfo is absent or names no
    model (other architectures' layouts: not guessed)."""
    blocks = cpuinfo_blocks(read_cpuinfo() if cpuinfo is None else cpuinfo)
    fields = blocks[0] if blocks else {}
    if "model name" not in fields:
        return None
    flags = set(fields.get("flags", "").split())
    have = " ".join(f for f in ARITHMETIC_FLAGS if f in flags)
    return (f"{fields['model name']} ({fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}; {have or 'no AVX2'})")


def git_commit() -> str | None:
    """The commit of the source tree this package runs from (None outside a git checkout)."""
    here = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             check=False)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(source: str) -> dict[str, str] | None:
    """What identifies the data a run trained on: the sha256 of an archive or file; for a folder, the
    sha256 of its listing (each file's relative path and size: cheap on any size, catches added, removed
    and resized files). None for synthetic data or a source that is gone."""
    path = Path(source)
    if path.is_file():
        return {"sha256": sha256_file(path)}
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{f.stat().st_size}\n".encode())
    return {"listing_sha256": h.hexdigest()}
