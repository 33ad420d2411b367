"""Imports every method module so that their @register_method decorators run."""

from . import at, crd, dkd, fitnet, kd, mimkd, vid  # noqa: F401
