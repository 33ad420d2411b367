"""CIFAR-10/100 in the official python-pickle layout, read without trusting the pickle.

The batches are pickles of dicts holding a numpy uint8 array. A restricted unpickler admits only
the few numpy constructors those files need, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError, one_line

_LAYOUT = {  # folder, train batches, test batches, label key, meta file, names key, classes
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
                "batches.meta", "label_names", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names", 100),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}
PIXELS = 3 * 32 * 32  # values per image row of a batch's 'data'
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _load_pickle(path: Path) -> dict:
    """The batch's dict, its byte-string keys (a Python 2 pickle re-saved as bytes) read as text."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read the CIFAR python batch ({e.strerror or one_line(e)})") from None
    try:
        obj = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as e:  # a damaged pickle fails in many ways (EOFError, OverflowError, TypeError, ...)
        raise UserError(f"{path}: not a CIFAR python batch ({one_line(e)})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a CIFAR python batch (expected a dict)")
    return {_text(k): v for k, v in obj.items()}


def _text(value):
    """Text of a key or class name that a Python 2 pickle, re-saved with bytes, stores as bytes."""
    return value.decode("latin1") if isinstance(value, bytes) else value


def find_cifar(root: Path, name: str) -> Path | None:
    folder = _LAYOUT[name][0]
    for cand in (root / folder, root):
        if (cand / _LAYOUT[name][1][0]).is_file():
            return cand
    return None


def download_cifar(root: Path, name: str) -> None:
    """torchvision's downloader (needs internet); the files are then read by `read_cifar`."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        cls(str(root), train=True, download=True)
    except Exception as e:  # network errors come in many types
        raise UserError(f"data.download: could not download {name} into {root} ({type(e).__name__}: {e}); "
                        "point data.root, --data-dir or MIMKD_DATA at a local copy") from None


def read_cifar(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """→ train images (N, 3, 32, 32) uint8, train labels, test images, test labels, class names. Every
    batch is checked (uint8 rows of 3072 values, one integer label per image, each a class index) and
    the class names too: a batch with fewer labels than images would otherwise train on shifted labels."""
    _, train_files, test_files, label_key, meta_file, names_key, classes = _LAYOUT[name]
    names = _label_names(folder / meta_file, names_key, classes)

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        batches = [_read_batch(folder / f, name, label_key, classes) for f in files]
        return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])

    xtr, ytr = read(train_files)
    xte, yte = read(test_files)
    return xtr, ytr, xte, yte, names


def _label_names(path: Path, key: str, classes: int) -> list[str]:
    names = _load_pickle(path).get(key)
    names = [_text(n) for n in names] if isinstance(names, list | tuple) else names
    if not isinstance(names, list) or len(names) != classes or not all(isinstance(n, str) and n for n in names):
        raise UserError(f"{path}: '{key}' must be a list of {classes} class names (strings), got {_what(names)}")
    if len(set(names)) != classes:
        raise UserError(f"{path}: '{key}' must hold {classes} distinct class names (some repeat)")
    return names


def _read_batch(path: Path, name: str, label_key: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    for key in ("data", label_key):
        if key not in d:
            raise UserError(f"{path}: not a {name} batch (no '{key}'; expected 'data' and '{label_key}')")
    data = d["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS
            and len(data)):
        raise UserError(f"{path}: 'data' must be a uint8 array of one or more rows of {PIXELS} values (32×32 RGB), "
                        f"got {_what(data)}")
    return data.reshape(-1, 3, 32, 32), _labels(d[label_key], path, label_key, len(data), name, classes)


def _labels(values, path: Path, key: str, count: int, name: str, classes: int) -> np.ndarray:
    """`count` class indices as int64, checked before the conversion (so 2**70 is out of range, not wrapped)."""
    if not (isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu"
            or isinstance(values, list | tuple) and all(_is_int(v) for v in values)):
        raise UserError(f"{path}: '{key}' must be a list of integer class indices, one per image, got {_what(values)}")
    if len(values) != count:
        raise UserError(f"{path}: {len(values)} labels in '{key}' for {count} images in 'data'; "
                        "expected one label per image")
    bad = next((int(v) for v in values if not 0 <= int(v) < classes), None)
    if bad is not None:
        raise UserError(f"{path}: label {bad} in '{key}' is outside 0..{classes - 1}; expected {name}'s "
                        f"{classes} class indices")
    return np.asarray(values, dtype=np.int64)


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)  # True is not class 1


def _what(value) -> str:
    """A short description of a value of the wrong kind, for one error line."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, list | tuple):
        kinds = sorted({type(v).__name__ for v in value[:1000]})
        return f"a list of {len(value)} ({', '.join(kinds) or 'empty'})"
    return "nothing" if value is None else f"a {type(value).__name__}"
