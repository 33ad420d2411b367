"""Shared builders for tests: tiny recipes on synthetic data."""

from __future__ import annotations

from mimkd_edge.recipe import Recipe, parse_recipe


def tiny_table(name: str = "tiny", model: str = "conv4", method: str = "none", epochs: int = 1, **extra) -> dict:
    table = {
        "name": name, "seed": 0,
        "data": {"dataset": "synthetic", "num_classes": 4, "synthetic_train": 96, "synthetic_test": 48},
        "student": {"model": model}, "method": {"name": method},
        "train": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "milestones": [max(1, epochs - 1)]},
    }
    for key, value in extra.items():
        table[key] = value
    return table


def tiny_recipe(**kw) -> Recipe:
    return parse_recipe(tiny_table(**kw), "test")


def with_bn_statistics(name: str):
    """Model `name` (10 classes, seed 0) with random weights and non-trivial BatchNorm statistics, in eval
    mode: what a trained network looks like to a rewrite that folds BatchNorm."""
    import torch

    from mimkd_edge.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


def write_image_folder(root, classes: int = 3, train: int = 10, test: int = 4, size: int = 8, seed: int = 0):
    """ROOT/train/<class>/*.png and ROOT/test/<class>/*.png of random RGB images (PNG: decoding is exact)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(d / f"{i:03d}.png")
    return root


def write_brightness_folder(root, *, channels: int = 3, size: int = 12, classes: int = 3, train: int = 8,
                            test: int = 4, seed: int = 0, prefix: str = "k"):
    """ROOT/{train,test}/<prefix><c>/*.png whose classes differ in brightness (mean 40 + 70·c, noise 30):
    something a model can learn in one epoch. Gray ("L") for 1 channel, RGB for 3."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (size, size) if channels == 1 else (size, size, 3)
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = root / split / f"{prefix}{c}"
            d.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(rng.normal(40 + 70 * c, 30, shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L" if channels == 1 else "RGB").save(d / f"{i}.png")
    return root


class Interrupt(Exception):
    """Raised from a training event to stop a run the way a kill would, after its checkpoint."""


def fit_until_interrupted(recipe: Recipe, out, after_epoch: int = 1) -> None:
    """Train `recipe` into `out` and stop it right after epoch `after_epoch` was checkpointed."""
    import pytest

    from mimkd_edge.engine.trainer import fit

    def stop(kind, info):
        if kind == "epoch" and info["epoch"] == after_epoch:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(recipe, out, on_event=stop)


def assert_one_line_error(result, *fragments) -> None:
    """A CLI failure as the guarantees promise it: exit 2, one `Error: ` line naming `fragments`, no traceback.

    Fragments are looked for in the whitespace-normalised output, as rich may wrap a long line.
    """
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    flat = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in flat, result.output


def write_flat_folder(tmp_path, train: int = 8, test: int = 2):
    """A gray 12×12 3-class folder of class folders with no train/ or test/ (a brightness folder's splits
    moved into the class folders): what a user's own data often looks like."""
    src = write_brightness_folder(tmp_path / "src", channels=1, size=12, classes=3, train=train, test=test)
    flat = tmp_path / "digits"
    for split in ("train", "test"):
        for c in (src / split).iterdir():
            (flat / c.name).mkdir(parents=True, exist_ok=True)
            for f in c.iterdir():
                f.rename(flat / c.name / f"{split}-{f.name}")
    return flat


# a script preamble for `python -c`: torch and torchvision cannot be imported, as on a device
NO_TORCH_PREAMBLE = """
import importlib.abc, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError(f"{name} is not installed on this device")
sys.meta_path.insert(0, _Blocked())
"""
