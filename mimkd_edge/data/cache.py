"""Where unpacked archives and decoded arrays live: never beside a (possibly read-only) source."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("MIMKD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mimkd-edge")
    return Path(root)


def source_key(path: Path) -> str:
    """A short key that changes when the source file or folder changes (path, size, mtime)."""
    st = path.stat()
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
