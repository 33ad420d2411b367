"""Imports every method module so that their @register_method decorators run."""

from . import kd  # noqa: F401
