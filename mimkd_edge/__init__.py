"""mimkd-edge: distil a large image classifier into a tiny, fast CPU model with MIMKD."""

__version__ = "0.1.0"
