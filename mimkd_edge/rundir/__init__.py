"""The run directory: the one contract between the stages (train → export → bench → report).

Only this package knows a run's layout (layout.py) and reads or writes its files, as typed records:
`RunSummary` (summary.py), `Manifest` / `ManifestArtifact` (manifest.py), `BenchRow` / `BenchRecord`
(bench_results.py), the accuracy cache (accuracy_cache.py), checkpoints and weights (checkpoint.py),
and a finished run loaded whole (loaded.py); staleness.py says whether an export is still that of its
run. It sits between the engine, which writes runs, and export / runtime / report, which read them; it
imports none of those.
"""

from .layout import (DEFAULT_RESULTS, RUNS_ROOT, RunDir, default_run_dir, exported_runs, finished_runs, latest_run,
                     owned, require_finished, run_key, weights_path)
from .manifest import Manifest, ManifestArtifact, load_verified, verified_export
from .summary import RunSummary, read_metrics, read_summary



def __getattr__(name: str):
    """`load_run` / `LoadedRun` on first use: they import torch and the model zoo, which the rest of
    this package (and `predict` on a device without torch) does not need."""
    if name in ("load_run", "LoadedRun"):
        from . import loaded

        return getattr(loaded, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_RESULTS", "RUNS_ROOT", "LoadedRun", "Manifest", "ManifestArtifact", "RunDir", "RunSummary",
           "default_run_dir", "exported_runs", "finished_runs", "latest_run", "load_run", "load_verified", "owned",
           "read_metrics", "read_summary", "require_finished", "run_key", "verified_export", "weights_path"]
