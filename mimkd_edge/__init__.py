"""mimkd-edge: distil a large image classifier into a tiny, fast CPU model with MIMKD.

The few public entry points are importable from here; they load lazily, so `mimkd-edge --help`
does not import torch.
"""

__version__ = "0.1.0"

_PUBLIC = {
    "create_model": "mimkd_edge.models", "list_models": "mimkd_edge.models",
    "load_recipe": "mimkd_edge.recipe", "fit": "mimkd_edge.engine.trainer",
    "export_run": "mimkd_edge.export", "open_session": "mimkd_edge.runtime.session",
    "bench_runs": "mimkd_edge.runtime.bench", "plot_tradeoff": "mimkd_edge.report.plot",
}
__all__ = ["bench_runs", "create_model", "export_run", "fit", "list_models", "load_recipe", "open_session",
           "plot_tradeoff"]  # the keys of _PUBLIC (tests/core/test_public_api.py)


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'mimkd_edge' has no attribute {name!r}")
