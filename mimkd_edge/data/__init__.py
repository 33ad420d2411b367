"""Data sets as uint8 splits (in memory or on disk) and the loaders that batch and augment them."""

from .datasets import ImageSet, Splits, channel_statistics, load_splits, resolve_recipe
from .loader import BatchLoader, Loader, StreamingLoader, make_loader

__all__ = ["ImageSet", "Splits", "channel_statistics", "load_splits", "resolve_recipe", "BatchLoader", "Loader",
           "StreamingLoader", "make_loader"]
