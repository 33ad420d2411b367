"""CIFAR-10/100 in the official python-pickle layout, read without trusting the pickle.

The batches are pickles of dicts holding a numpy uint8 array. A restricted unpickler admits only
the few numpy constructors those files need, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import UserError

_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels",
                "batches.meta", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names"),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _load_pickle(path: Path) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise UserError(f"{path}: not a CIFAR python batch ({e})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a CIFAR python batch (expected a dict)")
    return obj


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
    """→ train images (N, 3, 32, 32) uint8, train labels, test images, test labels, class names."""
    _, train_files, test_files, label_key, meta_file, names_key = _LAYOUT[name]

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = _load_pickle(folder / f)
            if "data" not in d or label_key not in d:
                raise UserError(f"{folder / f}: not a {name} batch (missing 'data' or '{label_key}')")
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    xtr, ytr = read(train_files)
    xte, yte = read(test_files)
    meta = _load_pickle(folder / meta_file)
    return xtr, ytr, xte, yte, [str(n) for n in meta[names_key]]
