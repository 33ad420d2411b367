"""Where each file of a run directory lives. The only module that spells a run file's name.

    runs/<name>/recipe.toml            the resolved recipe (every default written out)
               checkpoint.pt           model, method, optimiser, scheduler, RNG, metrics: resume point
               model.safetensors       the trained student's weights (what export and distill read)
               metrics.jsonl           one line per epoch
               summary.json            models, cost, accuracy, wall time, versions, git commit
               tb/                     TensorBoard event files, per epoch (where tensorboard is installed)
               .lock                   held (flock) by the process training into or exporting the directory
               export/manifest.json    the proven artifacts, their hashes and parity (export writes it)
               export/accuracy_cache.json  test accuracy per artifact sha256 × backend
               bench.json              the latest benchmark of this run: machine, settings, rows
               probe.json              linear-probe transfer accuracy, one entry per probe data set
    runs/bench.csv                     benchmark rows of every run (the default results table)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import UserError

RUNS_ROOT = Path("runs")
DEFAULT_RESULTS = RUNS_ROOT / "bench.csv"
RESULTS_MARKDOWN, TRADEOFF_FIGURE = "results.md", "tradeoff.png"  # a sweep's report, in its output folder


class RunDir:
    """A run directory's paths. Cheap: it touches the disk only when a property that says so is read."""

    __slots__ = ("path",)

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    recipe = property(lambda self: self.path / "recipe.toml")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    weights = property(lambda self: self.path / "model.safetensors")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    lock = property(lambda self: self.path / ".lock")
    tensorboard = property(lambda self: self.path / "tb")
    export = property(lambda self: self.path / "export")
    manifest = property(lambda self: self.export / MANIFEST)
    accuracy_cache = property(lambda self: self.export / ACCURACY_CACHE)
    bench = property(lambda self: self.path / "bench.json")
    probe = property(lambda self: self.path / "probe.json")

    @property
    def finished(self) -> bool:
        """Training ended: the weights and the summary are written (they are written last)."""
        return self.weights.is_file() and self.summary.is_file()

    @property
    def exported(self) -> bool:
        return self.manifest.is_file()

    @property
    def benched(self) -> bool:
        return self.bench.is_file()


MANIFEST, ACCURACY_CACHE = "manifest.json", "accuracy_cache.json"  # inside an export folder


def manifest_path(export_folder: str | Path) -> Path:
    """The manifest of an export folder (`mimkd-edge export --out` can put one anywhere)."""
    return Path(export_folder) / MANIFEST


def accuracy_cache_path(export_folder: str | Path) -> Path:
    return Path(export_folder) / ACCURACY_CACHE


def default_run_dir(name: str) -> Path:
    return RUNS_ROOT / name


def weights_path(path: str | Path) -> Path:
    """A run directory or a .safetensors file → the weights file."""
    p = Path(path)
    return RunDir(p).weights if p.is_dir() else p


def run_key(path: str | Path) -> str:
    """How a run is named in results: its resolved absolute path, the same from any working directory (a
    name relative to it made one run benched from three folders three runs). Rows written before, with
    a relative name, are read as relative to the working directory."""
    return Path(path).resolve().as_posix()


def finished_runs(root: str | Path = RUNS_ROOT) -> list[Path]:
    """Run directories at any depth under `root` (sweeps nest them) that finished, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p.parent for p in root.rglob(RunDir(".").summary.name) if RunDir(p.parent).finished]
    return sorted(runs, key=lambda p: RunDir(p).summary.stat().st_mtime_ns)


def exported_runs(root: str | Path = RUNS_ROOT) -> list[Path]:
    """Finished runs under `root` that hold an export manifest."""
    return [p for p in finished_runs(root) if RunDir(p).exported]


def latest_run(root: str | Path = RUNS_ROOT) -> Path:
    runs = finished_runs(root)
    if not runs:
        raise UserError(f"{root}: no finished run found; train or distill one first, or name RUN")
    return runs[-1]


def require_finished(path: str | Path) -> Path:
    """`path` as a finished run directory, or one line saying what is missing."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"{run.path}: no such run directory")
    if not run.weights.is_file():
        raise UserError(f"{run.path}: no {run.weights.name} in this run (did it finish?)")
    return run.path


_HELD: set[int] = set()  # lock descriptors this process holds (see `owned`)


def _release_in_child() -> None:
    """A forked child (OpenVINO's telemetry, a DataLoader worker) shares the parent's open lock file, and
    an flock lives as long as any process keeps it open: the child closes its copies, so a lock is held
    by its owner only and ends with it."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_release_in_child)


@contextlib.contextmanager
def owned(path: str | Path, doing: str = "training into"):
    """Hold the run directory for one process: a second `train`/`distill` into it (another terminal,
    a sweep started twice), or an `export` of it, is refused instead of writing its files beside the
    first's (an export reading the weights of one epoch and the recipe of the next). An advisory flock
    on RUN/.lock, which records the holder's pid and what it is `doing` for the refusal's message: the
    kernel drops it when the owner dies, so a killed run never leaves it stuck."""
    run = RunDir(path)
    try:
        run.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(run.lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"{run.path}: cannot create the run directory ({e.strerror or e})") from None
    try:
        if not _flock(fd):
            pid, _, holder = os.pread(fd, 128, 0).decode(errors="replace").strip().partition(" ")
            hint = "wait for it, or choose another --out" if doing == "training into" else "wait for it to finish"
            raise UserError(f"{run.path}: another process (pid {pid or '?'}) is {holder or 'training into'} this "
                            f"run directory; {hint}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {doing}\n".encode(), 0)
        _HELD.add(fd)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def owned_folder(path: str | Path):
    """Hold a folder that is not a run directory (an export's --out elsewhere) for one process, writing
    nothing into it (its files are copied to devices as they are): an flock on the folder itself."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        raise UserError(f"{folder}: cannot create or open the folder ({e.strerror or e})") from None
    try:
        if not _flock(fd):
            raise UserError(f"{folder}: another process is exporting into this folder; wait for it to finish")
        _HELD.add(fd)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)


def _flock(fd: int) -> bool:
    """Take the exclusive lock on `fd` without waiting: False when another holds it (True where the
    platform has no flock: nothing to hold)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
