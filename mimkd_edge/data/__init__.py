"""Data sets as uint8 splits (in memory or on disk) and the loaders that batch and augment them."""

from .datasets import ImageSet, Splits, load_splits
from .loader import BatchLoader, Loader, StreamingLoader, make_loader

__all__ = ["ImageSet", "Splits", "load_splits", "BatchLoader", "Loader", "StreamingLoader", "make_loader"]
