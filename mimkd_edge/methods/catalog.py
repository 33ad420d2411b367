"""Imports every method module so that their @register_method decorators run."""

from . import at, crd, fitnet, kd, mimkd, vid  # noqa: F401
