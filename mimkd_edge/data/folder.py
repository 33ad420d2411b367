"""Image-folder data sets (ROOT/train/<class>/*, ROOT/test/<class>/*), as a folder or an archive.

Archives are unpacked once into the cache. A split small enough to live in memory is decoded once and
cached as a uint8 array, so a second run does not decode tens of thousands of JPEGs again; a larger
one stays a list of files for the streaming loader.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cache import cache_root, source_key

_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_PIXELS = 89_478_485  # PIL's own default limit, used when it is switched off


def unpack(archive: Path) -> Path:
    """Unpack a .tar.gz/.tgz/.tar/.zip once into the cache and return the unpacked folder."""
    dest = cache_root() / "unpacked" / f"{archive.name}-{source_key(archive)}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        name = archive.name.lower()
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
                while tf.fileobj.read(1 << 20):  # to the end: gzip checks its CRC only there
                    pass
        elif name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    target = (tmp / member).resolve()
                    if not str(target).startswith(str(tmp.resolve())):
                        raise UserError(f"{archive}: unsafe path in archive: {member}")
                zf.extractall(tmp)
        else:
            raise UserError(f"{archive}: expected a folder or a .tar.gz/.tgz/.tar/.zip archive")
        os.replace(tmp, dest)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise UserError(f"{archive}: cannot unpack ({e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def find_split_root(root: Path) -> Path:
    """The folder holding train/ and test/: ROOT itself or its single sub-folder."""
    for cand in [root, *sorted(p for p in root.iterdir() if p.is_dir())] if root.is_dir() else []:
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    raise UserError(f"{root}: expected an image folder with train/<class>/ and test/<class>/ inside")


def _list_split(split_dir: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    paths, labels = [], []
    for i, c in enumerate(classes):
        if not (split_dir / c).is_dir():
            raise UserError(f"{split_dir / c}: missing class folder (train/ has {c})")
        files = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in _EXTENSIONS)
        if not files:
            raise UserError(f"{split_dir / c}: class folder holds no images ({', '.join(sorted(_EXTENSIONS))}); "
                            "remove it or add images")
        paths += files
        labels += [i] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def decode_image(path: Path, size: int) -> np.ndarray:
    """One image file → uint8 (3, size, size) RGB, resized bilinearly when it is not that size."""
    from PIL import Image

    # We refuse such images ourselves (below), in one line; PIL's warning would only add noise.
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

    try:
        with Image.open(path) as im:  # reads the header only
            if im.width * im.height > (Image.MAX_IMAGE_PIXELS or MAX_PIXELS):
                raise UserError(f"{path}: {im.width}×{im.height} pixels, more than an image of this tool may have "
                                f"({Image.MAX_IMAGE_PIXELS or MAX_PIXELS:,}): a decompression bomb or not a photo")
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: cannot decode image ({e})") from None


def decode_images(paths: list[Path], size: int, threads: int | None = None) -> np.ndarray:
    """Image files → uint8 (N, 3, size, size), decoded by a thread pool (PIL releases the GIL);
    `threads=1` decodes in the calling thread (a DataLoader worker is already one of many)."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    threads = threads or os.cpu_count() or 1
    if threads == 1 or len(paths) < 64:
        for i, p in enumerate(paths):
            out[i] = decode_image(p, size)
        return out
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i, arr in enumerate(pool.map(lambda p: decode_image(p, size), paths, chunksize=256)):
            out[i] = arr
    return out


Split = tuple["np.ndarray | list[Path]", np.ndarray]


def read_image_folder(source: Path, size: int, resident_bytes: int | None = None) -> tuple[Split, Split, list[str]]:
    """→ (train images, labels), (test images, labels), class names.

    Images are uint8 (N, 3, size, size) when the split's decoded size fits `resident_bytes` (None: no
    limit), else the list of its files, to be decoded batch by batch by the streaming loader.
    """
    folder = unpack(source) if source.is_file() else source
    root = find_split_root(folder)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"{root / 'train'}: no class folders found")
    key = f"{source.name}-{source_key(source)}-{size}"
    return (*(_read_split(root / split, classes, f"{key}-{split}", size, resident_bytes)
              for split in ("train", "test")), classes)


def _read_split(split_dir: Path, classes: list[str], key: str, size: int, resident_bytes: int | None) -> Split:
    paths, labels = _list_split(split_dir, classes)
    if not paths:
        raise UserError(f"{split_dir}: holds no images ({', '.join(sorted(_EXTENSIONS))})")
    if resident_bytes is not None and len(paths) * 3 * size * size > resident_bytes:
        return paths, labels
    cache = cache_root() / "decoded" / f"{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if len(z["y"]) == len(labels):
                return z["x"], z["y"]
    x = decode_images(paths, size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, x=x, y=labels)
    os.replace(tmp, cache)
    return x, labels
