"""Resolve a recipe's [data] table to uint8 train/test splits: in memory when they fit, else on disk.

A split whose decoded uint8 tensor fits `data.resident_max_gb` is decoded once (and cached) and
handed to the device-resident loader; a larger image folder stays a list of files that the streaming
loader decodes in DataLoader workers. CIFAR pickles and the synthetic set are always in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..recipe import DataConfig
from .cache import cache_root
from .cifar import download_cifar, find_cifar, read_cifar
from .folder import decode_images, read_image_folder
from .synthetic import make_synthetic


@dataclass
class ImageSet:
    """A split: either `images` in memory, or `files` decoded on demand to `size`x`size`."""

    images: torch.Tensor | None  # uint8 (N, 3, H, W) when resident
    labels: torch.Tensor  # int64 (N,)
    files: tuple[Path, ...] | None = None  # image files when streamed
    size: int | None = None  # decoded side of a streamed split

    @classmethod
    def on_disk(cls, files: list[Path], labels: torch.Tensor, size: int) -> "ImageSet":
        return cls(None, labels, tuple(files), size)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def resident(self) -> bool:
        return self.images is not None

    def take(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """uint8 images at `idx` (an index tensor or a slice), decoding them when the split is on disk."""
        if self.images is not None:
            return self.images[idx]
        assert self.files is not None and self.size is not None
        positions = range(len(self))[idx] if isinstance(idx, slice) else torch.as_tensor(idx).tolist()
        return torch.from_numpy(decode_images([self.files[i] for i in positions], self.size))

    def chunks(self, batch_size: int):
        """(uint8 images, labels) over the whole split in order, `batch_size` at a time."""
        for i in range(0, len(self), batch_size):
            yield self.take(slice(i, i + batch_size)), self.labels[i:i + batch_size]


@dataclass
class Splits:
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str  # where the images came from, for the run's summary


def resolve_root(cfg: DataConfig, override: str | None = None) -> Path:
    """--data-dir beats MIMKD_DATA beats the recipe's data.root; else a folder in the cache."""
    root = override or os.environ.get("MIMKD_DATA") or cfg.root
    return Path(root).expanduser() if root else cache_root() / "datasets"


def load_splits(cfg: DataConfig, data_dir: str | None = None) -> Splits:
    mean, std = cfg.normalisation
    if cfg.dataset == "synthetic":
        xtr, ytr, xte, yte, classes = make_synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.classes,
                                                     cfg.image_size)
        arrays, source = ((xtr, ytr), (xte, yte), classes), "synthetic"
    else:
        root = resolve_root(cfg, data_dir)
        arrays, source = _load_from_disk(cfg, root)
    train, test, classes = arrays
    if len(classes) != cfg.classes:
        raise UserError(f"{source}: found {len(classes)} classes, but the recipe expects {cfg.classes} "
                        "(data.num_classes)")
    return Splits(_image_set(*train, cfg.image_size), _image_set(*test, cfg.image_size), classes, mean, std, source)


def _image_set(images, labels, size: int) -> ImageSet:
    """numpy uint8 images → a resident set; a list of files → a streamed one."""
    labels = torch.from_numpy(labels)
    if isinstance(images, list):
        return ImageSet.on_disk(images, labels, size)
    return ImageSet(torch.from_numpy(images), labels)


def _load_from_disk(cfg: DataConfig, root: Path):
    is_folder_source = root.is_file() or (root.is_dir() and _has_split_dirs(root))
    if cfg.dataset == "imagefolder" or (is_folder_source and cfg.dataset in ("cifar10", "cifar100")):
        if not root.exists():
            raise UserError(f"data.root: no such folder or archive: {root}")
        return read_image_folder(root, cfg.image_size, resident_bytes=int(cfg.resident_max_gb * 2**30)), str(root)
    folder = find_cifar(root, cfg.dataset) if root.is_dir() else None
    if folder is None and cfg.download:
        download_cifar(root, cfg.dataset)
        folder = find_cifar(root, cfg.dataset)
    if folder is None:
        raise UserError(f"data.root: no {cfg.dataset} found in {root} (looked for the python-pickle batches "
                        f"or an image folder with train/ and test/); set data.download = true on a machine with "
                        f"internet, or point --data-dir / MIMKD_DATA at a local copy "
                        f"(e.g. ../shared/data/cifar10-jpeg-q75.tar.gz)")
    xtr, ytr, xte, yte, classes = read_cifar(folder, cfg.dataset)
    if cfg.image_size != 32:
        raise UserError(f"data.image_size: CIFAR images are 32x32, got {cfg.image_size}")
    return ((xtr, ytr), (xte, yte), classes), str(folder)


def _has_split_dirs(root: Path) -> bool:
    if (root / "train").is_dir() and (root / "test").is_dir():
        return True
    subs = [p for p in root.iterdir() if p.is_dir()]
    return len(subs) == 1 and (subs[0] / "train").is_dir() and (subs[0] / "test").is_dir()
