"""Image-folder data sets (ROOT/train/<class>/*, ROOT/test/<class>/*, or ROOT/<class>/* split by a seeded
fraction), as a folder or an archive.

Archives are unpacked once into the cache. A split small enough to live in memory is decoded once and
cached as a uint8 array, so a second run does not decode tens of thousands of JPEGs again; a larger
one stays a list of files for the streaming loader. The cache key covers every listed file (path,
size, times) and the class → label map (`files_key`): a folder whose contents changed is decoded again,
even when its own mtime did not move.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..imaging import GRAY_MODES, IMAGE_EXTENSIONS, decode_images, pil
from .cache import cache_root, files_key, source_key


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def data_name(source: str | Path) -> str:
    """An image folder's name as a data set: "digits" for digits/, digits.tar.gz or digits.zip."""
    name = Path(source).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def unpack(archive: Path) -> Path:
    """Unpack a .tar.gz/.tgz/.tar/.zip once into the cache and return the unpacked folder."""
    dest = cache_root() / "unpacked" / f"{archive.name}-{source_key(archive)}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        _extract(archive, tmp)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not dest.is_dir():
                raise
            # another process (two runs started together) unpacked the same archive first: same bytes, use it
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"{archive}: cannot unpack ({e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _extract(archive: Path, into: Path) -> None:
    name = archive.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
            while tf.fileobj.read(1 << 20):  # to the end: gzip checks its CRC only there
                pass
    elif name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (into / member).resolve()
                if not str(target).startswith(str(into.resolve())):
                    raise UserError(f"{archive}: unsafe path in archive: {member}")
            zf.extractall(into)
    else:
        raise UserError(f"{archive}: expected a folder or a .tar.gz/.tgz/.tar/.zip archive")


def split_root(root: Path) -> Path | None:
    """The folder holding train/ and test/: ROOT itself, or the one sub-folder that does (an archive
    usually unpacks into one); None when there is none. Two such sub-folders are ambiguous: an error."""
    if not root.is_dir():
        return None
    if (root / "train").is_dir() and (root / "test").is_dir():
        return root
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and (p / "train").is_dir() and (p / "test").is_dir()]
    if len(found) > 1:
        raise UserError(f"{root}: several image folders with train/ and test/ inside "
                        f"({', '.join(p.name for p in found)}); point data.root at one")
    return found[0] if found else None


def find_split_root(root: Path) -> Path:
    """`split_root`, or one line saying what was expected."""
    found = split_root(root)
    if found is None:
        raise UserError(f"{root}: expected an image folder with train/<class>/ and test/<class>/ inside, or one "
                        "folder per class with data.test_fraction set to split it (`mimkd-edge recipe init` does)")
    return found


def class_root(root: Path) -> Path | None:
    """The folder whose sub-folders are the classes, for a folder without train/ and test/: ROOT itself,
    or the one sub-folder holding the class folders (an archive usually unpacks into one); None when
    neither holds a class folder with images in it."""
    if not root.is_dir():
        return None
    subdirs = [p for p in sorted(root.iterdir()) if p.is_dir()]
    if any(_has_images(p) for p in subdirs):
        return root
    if len(subdirs) == 1 and any(_has_images(p) for p in subdirs[0].iterdir() if p.is_dir()):
        return subdirs[0]
    return None


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def _class_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise UserError(f"{folder}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                        "remove it or add images")
    return files


def _list_split(split_dir: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for i, c in enumerate(classes):
        if not (split_dir / c).is_dir():
            raise UserError(f"{split_dir / c}: missing class folder (train/ has {c})")
        files = _class_files(split_dir / c)
        paths += files
        labels += [i] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def split_by_fraction(root: Path, classes: list[str], fraction: float,
                      seed: int) -> dict[str, tuple[list[Path], np.ndarray]]:
    """A folder of class folders split into train and test: each class gives round(fraction × its images)
    (at least one, and at least one left to train on) to test, drawn by a permutation seeded by `seed`,
    so every run, seed and machine sees the same split of the same files."""
    rng = np.random.default_rng(seed)
    split: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for i, c in enumerate(classes):
        files = _class_files(root / c)
        if len(files) < 2:
            raise UserError(f"{root / c}: 1 image; a class needs at least 2 to give one to test and one to train")
        n_test = min(max(round(len(files) * fraction), 1), len(files) - 1)
        held = set(rng.permutation(len(files))[:n_test].tolist())
        for j, f in enumerate(files):
            paths, labels = split["test" if j in held else "train"]
            paths.append(f)
            labels.append(i)
    return {k: (paths, np.asarray(labels, dtype=np.int64)) for k, (paths, labels) in split.items()}


GEOMETRY_SAMPLE = 1000  # image headers read to find a folder's native channels and size


def native_geometry(paths: list[Path], channels: int | None,
                    size: int | None) -> tuple[int, int, list[str], tuple[int, int, int]]:
    """(channels, size, notes, native): a folder's own channel count and side where the recipe leaves them
    unset, read from the headers of up to GEOMETRY_SAMPLE images spread over the split, and one note
    per conversion that decoding will make. Gray images give 1 channel, any other mode 3 (RGB). Sizes:
    one square size is used as it is; several sizes, or non-square images, need data.image_size.
    `native`: (channels, height, width) of the images as they are (the most common size), for the record."""
    Image = pil()

    step = max(1, len(paths) // GEOMETRY_SAMPLE)
    modes, sizes = Counter(), Counter()
    for p in paths[::step][:GEOMETRY_SAMPLE]:
        try:
            with Image.open(p) as im:
                modes[im.mode] += 1
                sizes[im.size] += 1
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise UserError(f"{p}: cannot decode image ({e})") from None
    gray = sum(n for m, n in modes.items() if m in GRAY_MODES)
    native_c = 1 if gray == sum(modes.values()) else 3
    notes = []
    if channels is None:
        channels = native_c
        if native_c == 3 and gray:
            notes.append(f"{gray} of {sum(modes.values())} sampled images are gray: all are read as RGB")
    elif channels != native_c:
        notes.append(f"images are {'gray' if native_c == 1 else 'colour'}; data.channels = {channels}: read as "
                     + ("RGB (gray copied to 3 channels)" if channels == 3 else "gray (luminance)"))
    if size is None:
        if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
            common = ", ".join(f"{w}×{h} ({n})" for (w, h), n in sizes.most_common(3))
            raise UserError(f"{paths[0].parent.parent}: images of several or non-square sizes ({common}, ...); "
                            "set data.image_size: every image is then resized to it")
        size = next(iter(sizes))[0]
    else:
        other = sum(n for (w, h), n in sizes.items() if (w, h) != (size, size))
        if other:
            seen = ", ".join(f"{w}×{h}" for (w, h), _ in sizes.most_common(3))
            notes.append(f"images are {seen}: resized (bilinear) to data.image_size = {size}")
    (w, h), _ = sizes.most_common(1)[0]
    return channels, size, notes, (native_c, h, w)


Split = tuple["np.ndarray | list[Path]", np.ndarray]


def read_image_folder(source: Path, size: int | None = None, resident_bytes: int | None = None,
                      channels: int | None = None, test_fraction: float = 0.0, split_seed: int = 0) -> FolderData:
    """An image folder's splits at its own geometry, or at the recipe's (`channels`, `size`; None:
    the folder's own, see native_geometry). A split is uint8 (N, channels, size, size) when its decoded
    size fits `resident_bytes` (None: no limit), else the list of its files, decoded batch by batch by
    the streaming loader. A folder without train/ and test/ is one folder per class, split by
    `test_fraction` (split_by_fraction); the recipe must ask for that, so a misplaced folder is not
    silently split."""
    folder = unpack(source) if source.is_file() else source
    root = split_root(folder)
    if root is None and test_fraction:
        root = class_root(folder)
        if root is None:
            raise UserError(f"{folder}: expected one folder per class (<class>/*.png, ...) to split by "
                            f"data.test_fraction = {test_fraction}")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        listed = split_by_fraction(root, classes, test_fraction, split_seed)
        spec = f"-test{test_fraction}-seed{split_seed}"
    else:
        root = find_split_root(folder)
        if test_fraction:
            raise UserError(f"data.test_fraction: {root} has its own train/ and test/ splits; set it to 0 "
                            "(it splits a folder of class folders)")
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        if not classes:
            raise UserError(f"{root / 'train'}: no class folders found")
        listed = {split: _list_split(root / split, classes) for split in ("train", "test")}
        spec = ""
    for split, (paths, _) in listed.items():
        if not paths:
            raise UserError(f"{root / split}: holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    channels, size, notes, native = native_geometry(listed["train"][0] + listed["test"][0], channels, size)
    content = files_key(root, classes, listed["train"][0] + listed["test"][0]) + spec
    key = f"{source.name}-{content}-{channels}x{size}"
    train, test = (_read_split(*listed[split], f"{key}-{split}", channels, size, resident_bytes)
                   for split in ("train", "test"))
    return FolderData(train, test, classes, channels, size, notes, content, native)


@dataclass
class FolderData:
    """Splits read from disk (an image folder, or CIFAR's python batches) and the geometry read at."""

    train: Split
    test: Split
    classes: list[str]
    channels: int
    size: int
    notes: list[str]  # conversions decoding makes (printed once by the trainer)
    key: str = ""  # files_key of an image folder's content ("" for CIFAR's batches): keys caches derived from it
    native: tuple[int, int, int] = (3, 32, 32)  # (channels, height, width) of the images as stored


def _read_split(paths: list[Path], labels: np.ndarray, key: str, channels: int, size: int,
                resident_bytes: int | None) -> Split:
    if resident_bytes is not None and len(paths) * channels * size * size > resident_bytes:
        return paths, labels
    cache = cache_root() / "decoded" / f"{key}.npz"
    cached = _cached_split(cache, labels, (len(paths), channels, size, size))
    if cached is not None:
        return cached, labels
    x = decode_images(paths, size, channels)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, x=x, y=labels)
    os.replace(tmp, cache)
    return x, labels


def _cached_split(cache: Path, labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The decoded images of a cache entry when it holds exactly these labels at this shape; None (decode
    again) for anything else, a damaged file included."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if x.dtype != np.uint8 or x.shape != shape or not np.array_equal(y, labels):
        return None
    return x
