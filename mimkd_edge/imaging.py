"""Image files → model input, with numpy and Pillow only: what training reads and what `predict` feeds
an artifact on a device without torch are the same pixels by construction (one decoder, one
normalisation, written once here).

    x = normalise(decode_images(paths, size=32, channels=3), mean, std)   # float32 NCHW

Decoding: gray ("L") for 1 channel, RGB for 3; resized bilinearly (PIL) to size × size when it is not
already; no crop. 16-bit gray images (16-bit PNG/TIFF) are read by their range, 0..65535 → 0..255 by
the high byte (v >> 8, as Pillow reads 16-bit colour PNGs); float and 32-bit integer images have no
fixed range and are refused in one line (PIL's convert() would clip them to all white or all black).
Normalisation: (pixel − 255·mean) · 1 / (255·std), per channel, in float32 — the same operations in
the same order as the training loader's, so the results are bit-identical.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from .errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MAX_PIXELS = 89_478_485  # PIL's own default limit, used when it is switched off
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}  # PIL modes read as one channel
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})  # 16-bit gray, unsigned
RESIZE_RULE = "bilinear (PIL) to the input size when it differs; no crop"


def pil():
    """PIL's Image module, with its decompression-bomb *warning* silenced: decode_image refuses such
    images itself, in one line; the warning would only add a second, unformatted one."""
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    return Image


def decode_image(path: Path, size: int, channels: int = 3) -> np.ndarray:
    """One image file → uint8 (channels, size, size): gray ("L") for 1 channel, RGB for 3, resized
    bilinearly when it is not size × size."""
    Image = pil()
    try:
        with Image.open(path) as opened:  # reads the header only
            if opened.width * opened.height > (Image.MAX_IMAGE_PIXELS or MAX_PIXELS):
                raise UserError(f"{path}: {opened.width}×{opened.height} pixels, more than an image of this tool "
                                f"may have ({Image.MAX_IMAGE_PIXELS or MAX_PIXELS:,}): a decompression bomb or not "
                                "a photo")
            im = eight_bit(opened, path).convert("L" if channels == 1 else "RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
            return arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"{path}: cannot decode image ({e})") from None


def eight_bit(im, path: Path):
    """`im` with 8-bit pixels where PIL's convert() would clip wider ones to 255: 16-bit gray (mode I;16,
    or I for a PNG, which only stores 16-bit there) by its high byte; float ("F") and 32-bit integer ("I")
    pixels have no fixed range to scale by: one line naming the file. Other modes pass unchanged."""
    if im.mode in SIXTEEN_BIT_MODES or (im.mode == "I" and im.format == "PNG"):
        high = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        return pil().fromarray(high, "L")
    if im.mode in ("F", "I"):
        kind = "32-bit float" if im.mode == "F" else "32-bit integer"
        raise UserError(f"{path}: {kind} pixels have no fixed range to read as 8 bits; expected an 8- or 16-bit "
                        "image (save it as an 8- or 16-bit PNG)")
    return im


def decode_images(paths: Sequence[Path], size: int, channels: int = 3, threads: int | None = None) -> np.ndarray:
    """Image files → uint8 (N, channels, size, size), decoded by a thread pool (PIL releases the GIL);
    `threads=1` decodes in the calling thread (a DataLoader worker is already one of many)."""
    out = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    threads = threads or os.cpu_count() or 1
    if threads == 1 or len(paths) < 64:
        for i, p in enumerate(paths):
            out[i] = decode_image(p, size, channels)
        return out
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i, arr in enumerate(pool.map(lambda p: decode_image(p, size, channels), paths, chunksize=256)):
            out[i] = arr
    return out


def normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, C, H, W) → float32, (x − 255·mean) · (1 / (255·std)) per channel (the loader's formula)."""
    shape = (1, -1, 1, 1)
    m = np.asarray(mean, dtype=np.float32).reshape(shape) * np.float32(255)
    inv = np.float32(1.0) / (np.asarray(std, dtype=np.float32).reshape(shape) * np.float32(255))
    return np.ascontiguousarray((images.astype(np.float32) - m) * inv)


def scale_raw(images: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]: the input of an artifact whose graph normalises itself."""
    return images.astype(np.float32) / np.float32(255.0)


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, and the images inside folders named (recursively, sorted); one line when none."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            raise UserError(f"{p}: no such image file or folder")
    if not found:
        raise UserError(f"{', '.join(map(str, paths))}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return found
