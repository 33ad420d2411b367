"""Run exported artifacts: one Session interface over torch, onnxruntime and openvino.

The names below load lazily, so the CLI can read runtime/bench_config.py's defaults without numpy.
"""

_PUBLIC = {"BACKENDS": "backends", "Session": "session", "open_session": "session"}
__all__ = ["BACKENDS", "Session", "open_session"]  # _PUBLIC's keys


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
