"""Run exported artifacts: one Session interface over torch, onnxruntime and openvino."""

from .session import BACKENDS, Session, open_session

__all__ = ["BACKENDS", "Session", "open_session"]
