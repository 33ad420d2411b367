"""Resolve a recipe's [data] table to uint8 train/test splits: in memory when they fit, else on disk.

A split whose decoded uint8 tensor fits `data.resident_max_gb` is decoded once (and cached) and
handed to the device-resident loader; a larger image folder stays a list of files that the streaming
loader decodes in DataLoader workers. CIFAR pickles and the synthetic set are always in memory.

Normalisation: the recipe's data.mean / data.std, else CIFAR's published statistics, else — for an
image folder — measured on its training split (channel_statistics, cached); build_session writes
the values used into the run's recipe, so export and bench use exactly them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..recipe import NUM_CLASSES, DataConfig, Recipe
from .cache import cache_root, source_key
from .cifar import CIFAR10_CLASSES, download_cifar, find_cifar, read_cifar
from ..imaging import decode_images
from .folder import FolderData, read_image_folder, split_root
from .synthetic import make_synthetic


@dataclass
class ImageSet:
    """A split: either `images` in memory, or `files` decoded on demand to `channels` × `size` × `size`."""

    images: torch.Tensor | None  # uint8 (N, C, H, W) when resident
    labels: torch.Tensor  # int64 (N,)
    files: tuple[Path, ...] | None = None  # image files when streamed
    size: int | None = None  # decoded side of a streamed split
    channels: int = 3  # decoded channels of a streamed split

    @classmethod
    def on_disk(cls, files: list[Path], labels: torch.Tensor, size: int, channels: int = 3) -> ImageSet:
        return cls(None, labels, tuple(files), size, channels)

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
        return torch.from_numpy(decode_images([self.files[i] for i in positions], self.size, self.channels))

    def subset(self, idx: np.ndarray) -> ImageSet:
        """The images at `idx` (sorted positions), resident or on disk as this split is."""
        t = torch.from_numpy(idx)
        if self.images is not None:
            return ImageSet(self.images[t], self.labels[t])
        assert self.files is not None
        return ImageSet(None, self.labels[t], tuple(self.files[i] for i in idx.tolist()), self.size, self.channels)

    def chunks(self, batch_size: int):
        """(uint8 images, labels) over the whole split in order, `batch_size` at a time."""
        for i in range(0, len(self), batch_size):
            yield self.take(slice(i, i + batch_size)), self.labels[i:i + batch_size]


@dataclass
class Splits:
    train: ImageSet
    test: ImageSet
    classes: list[str]
    mean: tuple[float, ...]  # the normalisation used: the recipe's, else the data's (below)
    std: tuple[float, ...]
    source: str  # where the images came from, for the run's summary
    data_mean: tuple[float, ...] = ()  # what the data gives when a recipe sets none (resolve_recipe)
    data_std: tuple[float, ...] = ()
    channels: int = 3  # the geometry the images were read at
    image_size: int = 32
    notes: list[str] = field(default_factory=list)  # conversions made while reading (printed once)
    val: ImageSet | None = None  # held out of the training images (data.val_split), else None
    origin: str = ""  # which setting named `source` (DataLocation.origin; "generated" for the synthetic set)
    native: tuple[int, int, int] = (3, 32, 32)  # (channels, height, width) of the images as stored


VAL_SEED = 0  # one validation split for every run and seed, so choices made on it compare like with like
SUBSET_SEED = 1  # data.train_subset's draw: the same images for every run, independent of the validation draw


def holdout_indices(labels: np.ndarray, size: int, seed: int = VAL_SEED) -> np.ndarray:
    """Sorted positions of `size` images drawn without replacement, stratified by class: each class gives
    its share of `size` (largest remainders settle the rounding), its images chosen by a seeded permutation."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[: size - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(chosen))


def split_validation(train: ImageSet, size: int, source: str) -> tuple[ImageSet, ImageSet]:
    """(train less the validation images, the validation images)."""
    if size >= len(train):
        raise UserError(f"data.val_split: {size} images asked for, but {source} has {len(train)} training images; "
                        "hold out fewer")
    held = holdout_indices(train.labels.numpy(), size)
    keep = np.setdiff1d(np.arange(len(train)), held, assume_unique=True)
    return train.subset(keep), train.subset(held)


@dataclass(frozen=True)
class DataLocation:
    """Where the data is, and which setting said so (printed when a run starts)."""

    path: Path
    origin: str  # "--data-dir", "the run's recorded data", "data.root", "MIMKD_DATA" or "the cache folder"


def locate_data(cfg: DataConfig, override: str | None = None, recorded: str | None = None) -> DataLocation:
    """One order, the usual one (explicit beats implicit): --data-dir, then where a finished run's data
    was found when it trained (`recorded`, while it exists: export and bench use the run's own data),
    then the recipe's data.root, then the MIMKD_DATA environment variable, then a folder in the cache.
    The environment comes last: it is set once for a shell, and must not override a recipe that says
    where its data is."""
    if recorded and not Path(recorded).exists():
        recorded = None
    for value, origin in ((override, "--data-dir"), (recorded, "the run's recorded data"), (cfg.root, "data.root"),
                          (os.environ.get("MIMKD_DATA"), "MIMKD_DATA")):
        if value:
            return DataLocation(Path(value).expanduser(), origin)
    return DataLocation(cache_root() / "datasets", "the cache folder")


def load_splits(cfg: DataConfig, data_dir: str | None = None, *, recorded: str | None = None) -> Splits:
    """The train and test splits `cfg` names, at the data's own geometry unless the recipe sets
    data.channels / data.image_size. `recorded`: the data location a finished run used (its summary's
    data.source), so that export and bench find it without --data-dir."""
    notes: list[str] = []
    if cfg.dataset == "synthetic":
        channels, size = cfg.channels or 3, cfg.image_size or 32
        xtr, ytr, xte, yte, classes = make_synthetic(cfg.synthetic_train, cfg.synthetic_test, cfg.classes, size)
        if channels != 3:  # the synthetic set is drawn in RGB; other channel counts take its luminance
            xtr, xte = (np.repeat(x.mean(1, keepdims=True).round().astype(np.uint8), channels, 1) for x in (xtr, xte))
        (train, test), source, content, origin = ((xtr, ytr), (xte, yte)), "synthetic", "", "generated"
        native = (3, size, size)
    else:
        location = locate_data(cfg, data_dir, recorded)
        origin = location.origin
        found, source = _load_from_disk(cfg, location.path)
        train, test, classes, channels, size, notes, content, native = (
            found.train, found.test, found.classes, found.channels, found.size, found.notes, found.key, found.native)
    train_set, test_set = _image_set(*train, size, channels), _image_set(*test, size, channels)
    val_set = None
    if cfg.val_split:
        train_set, val_set = split_validation(train_set, cfg.val_split, source)
    if cfg.train_subset and cfg.train_subset < len(train_set):
        train_set = train_set.subset(holdout_indices(train_set.labels.numpy(), cfg.train_subset, seed=SUBSET_SEED))
    data_mean, data_std = cfg.default_normalisation
    if data_mean is None:
        data_mean, data_std = _measured_statistics(train_set, source, size, channels, content)
    data_mean, data_std = _fit_channels(data_mean, channels), _fit_channels(data_std, channels)
    mean, std = _per_channel(cfg.mean, data_mean, channels), _per_channel(cfg.std, data_std, channels)
    if len(mean) != channels or len(std) != channels:
        raise UserError(f"data.mean / data.std: {len(mean)} / {len(std)} values for {channels}-channel images; "
                        "give one value or one per channel")
    if not (cfg.dataset == "imagefolder" and cfg.num_classes is None) and len(classes) != cfg.classes:
        raise UserError(f"{source}: found {len(classes)} classes, but the recipe expects {cfg.classes} "
                        "(data.num_classes)")
    return Splits(train_set, test_set, classes, mean, std, source, tuple(data_mean), tuple(data_std), channels,
                  size, notes, val_set, origin, native)


def _per_channel(values: tuple[float, ...] | None, data_values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """The recipe's values (one stands for every channel), else the data's."""
    if values is None:
        return tuple(data_values)
    return tuple(values) * channels if len(values) == 1 else tuple(values)


def _fit_channels(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """Published RGB statistics for gray images: their mean over the channels."""
    if len(values) == channels:
        return tuple(values)
    return (round(sum(values) / len(values), 4),) * channels


def resolve_recipe(recipe: Recipe, splits: Splits) -> Recipe:
    """`recipe` with what the data says filled in where it says nothing: an image folder's class
    count and normalisation, and the augmentation the data set's defaults give. A run writes this
    resolved recipe, so export and bench use exactly the values it trained with; resume compares
    resolved recipes."""
    d = recipe.data
    crop_padding, flip = d.default_augmentation(splits.image_size)
    return replace(recipe, data=replace(d, num_classes=d.num_classes or len(splits.classes),
                                        channels=splits.channels, image_size=splits.image_size,
                                        mean=_per_channel(d.mean, splits.data_mean, splits.channels),
                                        std=_per_channel(d.std, splits.data_std, splits.channels),
                                        crop_padding=crop_padding, flip=flip))


STATS_SAMPLE = 10_000  # images of a streamed split its statistics are measured on


def channel_statistics(images: ImageSet) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a split's pixels scaled to [0, 1] (float64 sums), rounded to 4
    places as recipes write them. A resident split is measured whole; a streamed one on a fixed
    sample of STATS_SAMPLE images. A std of 0 (a constant channel) becomes 1/255."""
    n = len(images)
    if images.resident or n <= STATS_SAMPLE:
        batches = (x for x, _ in images.chunks(2048))
    else:
        idx = torch.from_numpy(np.sort(np.random.default_rng(0).choice(n, STATS_SAMPLE, replace=False)))
        batches = (images.take(idx[i: i + 1024]) for i in range(0, len(idx), 1024))
    total = total_sq = 0
    count = 0
    for batch in batches:
        x = batch.to(torch.float64) / 255.0
        total = total + x.sum((0, 2, 3))
        total_sq = total_sq + (x * x).sum((0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(1 / 255)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _measured_statistics(train: ImageSet, source: str, size: int, channels: int,
                         content: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """channel_statistics of an image folder's training split, cached beside its decoded images and
    keyed like them by the folder's content (`content`: folder.files_key), so rewritten images are
    measured again."""
    what = f"{source}|{content or source_key(Path(source))}|{channels}x{size}|{len(train)}"
    key = hashlib.sha256(what.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    path = cache_root() / "stats" / f"{key}.json"
    cached = _cached_statistics(path, channels)
    if cached is not None:
        return cached
    mean, std = channel_statistics(train)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"mean": mean, "std": std}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs a re-measurement next time, nothing else
    return mean, std


def _cached_statistics(path: Path, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) of a statistics cache entry: `channels` numbers each, mean in [0, 1], std in (0, 1];
    None (measure again) for a missing, damaged or tampered file."""
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        mean, std = cached["mean"], cached["std"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == channels):
        return None
    if not all(isinstance(v, float | int) and not isinstance(v, bool) for v in mean + std):
        return None
    if not all(0 <= m <= 1 for m in mean) or not all(0 < v <= 1 for v in std):
        return None
    return tuple(float(m) for m in mean), tuple(float(v) for v in std)


def _image_set(images, labels, size: int, channels: int) -> ImageSet:
    """numpy uint8 images → a resident set; a list of files → a streamed one."""
    labels = torch.from_numpy(labels)
    if isinstance(images, list):
        return ImageSet.on_disk(images, labels, size, channels)
    return ImageSet(torch.from_numpy(images), labels)


def _load_from_disk(cfg: DataConfig, root: Path):
    is_folder_source = root.is_file() or split_root(root) is not None
    if cfg.dataset == "imagefolder" or (is_folder_source and cfg.dataset in ("cifar10", "cifar100")):
        if not root.exists():
            raise UserError(f"data.root: no such folder or archive: {root}")
        found = read_image_folder(root, cfg.image_size, resident_bytes=int(cfg.resident_max_gb * 2**30),
                                  channels=cfg.channels, test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)
        if cfg.dataset != "imagefolder":
            _require_cifar_folder(cfg, found, root)
        return found, str(root.resolve())
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
    if cfg.image_size not in (None, 32) or cfg.channels not in (None, 3):
        raise UserError(f"data.image_size / data.channels: CIFAR's python batches are 32×32 RGB, got "
                        f"{cfg.image_size} / {cfg.channels} (an image folder of CIFAR can be read at another geometry)")
    return FolderData((xtr, ytr), (xte, yte), classes, 3, 32, []), str(folder.resolve())


def _require_cifar_folder(cfg: DataConfig, found: FolderData, root: Path) -> None:
    """An image folder read for a CIFAR recipe (CIFAR re-encoded as JPEG files, say) must be that CIFAR:
    the run normalises with CIFAR's published statistics and expects its classes, which would be silently
    wrong for anyone's own images (--data-dir pointed at them with a CIFAR recipe)."""
    native_c, h, w = found.native
    if cfg.dataset == "cifar10":
        same = tuple(found.classes) == CIFAR10_CLASSES
    else:
        same = len(found.classes) == NUM_CLASSES[cfg.dataset]
    if same and (cfg.image_size is not None or (native_c, h, w) == (3, 32, 32)):
        return
    shown = ", ".join(found.classes[:4]) + (", ..." if len(found.classes) > 4 else "")
    name = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}[cfg.dataset]
    raise UserError(f"{root}: an image folder of {len(found.classes)} classes ({shown}), {native_c}×{h}×{w} images, "
                    f"is not {name}, which the recipe's data.dataset = \"{cfg.dataset}\" names (its normalisation "
                    "and classes would be wrong for these images); for your own images use data.dataset = "
                    "\"imagefolder\": `mimkd-edge recipe init FOLDER --student MODEL` writes such a recipe")
