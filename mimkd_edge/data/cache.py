"""Where unpacked archives and decoded arrays live: never beside a (possibly read-only) source; and the
keys that say when a cached entry still describes its source."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from collections.abc import Iterable


def cache_root() -> Path:
    root = os.environ.get("MIMKD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mimkd-edge")
    return Path(root)


def source_key(path: Path) -> str:
    """A short key that changes when the source file or folder changes (path, size, mtime). For an
    archive that is enough; a folder's own mtime does not see its files change: see `files_key`."""
    st = path.stat()
    text = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def files_key(root: Path, classes: list[str], files: Iterable[Path]) -> str:
    """A short key of an image folder's content as listed: the folder, the class → label map (label i
    is classes[i]) and, per file, its path, size, mtime, ctime and inode. One stat per file
    (60,000 files: a fraction of a second); a file swapped, moved to another class, rewritten or renamed
    changes the key (ctime and inode catch a move that keeps size and mtime, as `mv` does)."""
    h = hashlib.sha256(json.dumps([str(root.resolve()), classes]).encode())
    for p in files:
        st = p.stat()
        h.update(os.fsencode(p))
        h.update(f"\0{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}\0".encode())
    return h.hexdigest()[:16]
