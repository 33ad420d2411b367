"""Resolve a recipe's [data] table to in-memory uint8 train/test splits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..recipe import DataConfig
from .cache import cache_root
from .cifar import download_cifar, find_cifar, read_cifar
from .folder import read_image_folder
from .synthetic import make_synthetic


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)


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
        arrays = make_synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.classes, cfg.image_size)
        source = "synthetic"
    else:
        root = resolve_root(cfg, data_dir)
        arrays, source = _load_from_disk(cfg, root)
    xtr, ytr, xte, yte, classes = arrays
    if len(classes) != cfg.classes:
        raise UserError(f"{source}: found {len(classes)} classes, but the recipe expects {cfg.classes} "
                        "(data.num_classes)")
    return Splits(ImageSet(torch.from_numpy(xtr), torch.from_numpy(ytr)),
                  ImageSet(torch.from_numpy(xte), torch.from_numpy(yte)), classes, mean, std, source)


def _load_from_disk(cfg: DataConfig, root: Path):
    is_folder_source = root.is_file() or (root.is_dir() and _has_split_dirs(root))
    if cfg.dataset == "imagefolder" or (is_folder_source and cfg.dataset in ("cifar10", "cifar100")):
        if not root.exists():
            raise UserError(f"data.root: no such folder or archive: {root}")
        return read_image_folder(root, cfg.image_size), str(root)
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
    return (xtr, ytr, xte, yte, classes), str(folder)


def _has_split_dirs(root: Path) -> bool:
    if (root / "train").is_dir() and (root / "test").is_dir():
        return True
    subs = [p for p in root.iterdir() if p.is_dir()]
    return len(subs) == 1 and (subs[0] / "train").is_dir() and (subs[0] / "test").is_dir()
