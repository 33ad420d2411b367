"""Atomic file writes (temp file + fsync + rename): a crash or a full disk never leaves a half-written
file, and the previous version survives any failure. Every result file of the project goes through here."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

from .errors import UserError, one_line

# How libraries that write through their own streams report a failed write (a full disk, a quota): torch.save's
# zip writer ("unexpected pos", "file write failed") and OpenVINO's serialiser (std::ios "basic_ios::clear").
LIBRARY_WRITE_FAILURES = ("unexpected pos", "file write failed", "failed writing file", "basic_ios::clear",
                          "iostream error", "No space left on device", "Disk quota exceeded")


def default_file_mode() -> int:
    """0666 less the process umask, read when asked (a umask set after import is honoured)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)`, fsync, then rename over `path`; the old file survives any failure.
    A folder that cannot be written (read-only, disk full) is one UserError naming `path`."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, default_file_mode())  # after writing: mkstemp makes 0600, and some writers recreate the file
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        reason = write_failure(e)
        if reason is not None:
            raise UserError(f"{path}: cannot write ({reason}); the previous file, if any, is unchanged") from None
        raise


def write_failure(e: BaseException) -> str | None:
    """Why a write failed, when `e` says the disk refused it (an OSError, or a library's RuntimeError that
    means the same); None for anything else (a bug stays a traceback)."""
    if isinstance(e, OSError):
        return str(e.strerror or e)
    if isinstance(e, RuntimeError) and any(m in str(e) for m in LIBRARY_WRITE_FAILURES):
        return one_line(e).removeprefix("RuntimeError: ")
    return None


@contextlib.contextmanager
def write_errors(path: str | Path) -> Iterator[None]:
    """For writers that cannot go through `atomic_write` (several files renamed as a set): a failed write
    inside is the same one-line UserError naming `path`."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        reason = write_failure(e)
        if reason is None:
            raise
        raise UserError(f"{path}: cannot write ({reason}); the previous file, if any, is unchanged") from None


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the `.NAME.*.tmp` files a killed writer left in `folder` (call only while owning it)."""
    stale = [p for p in Path(folder).glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file, or one UserError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable JSON ({e})") from None
