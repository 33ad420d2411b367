"""Image-folder data sets (ROOT/train/<class>/*, ROOT/test/<class>/*), as a folder or an archive.

Archives are unpacked once into the cache; decoded images are cached as uint8 arrays so a second
run does not decode tens of thousands of JPEGs again.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cache import cache_root, source_key

_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


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
        files = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in _EXTENSIONS)
        paths += files
        labels += [i] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def _decode(paths: list[Path], size: int) -> np.ndarray:
    from PIL import Image

    def one(p: Path) -> np.ndarray:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)

    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for i, arr in enumerate(pool.map(one, paths, chunksize=256)):
            out[i] = arr.transpose(2, 0, 1)
    return out


def read_image_folder(source: Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """→ train images (N, 3, size, size) uint8, labels, test images, labels, class names."""
    folder = unpack(source) if source.is_file() else source
    root = find_split_root(folder)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise UserError(f"{root / 'train'}: no class folders found")
    cache = cache_root() / "decoded" / f"{source.name}-{source_key(source)}-{size}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["xtr"], z["ytr"], z["xte"], z["yte"], [str(c) for c in z["classes"]]
    tr_paths, ytr = _list_split(root / "train", classes)
    te_paths, yte = _list_split(root / "test", classes)
    if not tr_paths or not te_paths:
        raise UserError(f"{root}: train/ or test/ holds no images ({', '.join(sorted(_EXTENSIONS))})")
    xtr, xte = _decode(tr_paths, size), _decode(te_paths, size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, xtr=xtr, ytr=ytr, xte=xte, yte=yte, classes=np.asarray(classes))
    os.replace(tmp, cache)
    return xtr, ytr, xte, yte, classes
