"""Data sets as uint8 tensors in memory, and a device-resident batch loader over them."""

from .datasets import ImageSet, Splits, load_splits
from .loader import BatchLoader

__all__ = ["ImageSet", "Splits", "load_splits", "BatchLoader"]
