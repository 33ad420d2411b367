"""`mimkd-edge recipe init`: complete, commented recipes for a user's own image folder.

    facts = inspect_folder(Path("digits"))                       # classes, geometry, mean/std, split
    for path, text in starter_recipes(facts, student="conv4", method="mimkd", teacher="resnet20"):
        ...                                                       # the teacher's recipe, then the student's

What the folder says is measured by the code a run reads it with (data.load_splits), and written into
the recipe as values, each with a comment saying where it came from; what a user chooses (model,
method, epochs, augmentation) is written out too, so nothing is left to a default the user never saw.
Every text is parsed back as a recipe before it is returned: what is written is a valid recipe.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

# `recipe init`'s defaults, read by its options at import: this module imports nothing heavy at the top
DEFAULT_EPOCHS = 30  # a small data set on a CPU: minutes per model, not the paper's 240-epoch CIFAR schedule
DEFAULT_TEST_FRACTION = 0.2  # of a folder of class folders, held out for test
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True)
class FolderFacts:
    """What an image folder says about itself, as a run would read it."""

    root: Path  # absolute
    name: str  # the data set's name: the folder's (or archive's) name
    classes: list[str]
    channels: int
    image_size: int
    native: tuple[int, int, int]  # (channels, height, width) as stored
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_images: int
    test_images: int
    test_fraction: float  # 0: the folder has train/ and test/
    split_seed: int
    notes: list[str]  # conversions reading makes (resizes, colour)


def inspect_folder(folder: Path, *, image_size: int | None = None, test_fraction: float = DEFAULT_TEST_FRACTION,
                   split_seed: int = DEFAULT_SPLIT_SEED) -> FolderFacts:
    """Read `folder` as a run will: with train/ and test/ as they are, else one folder per class split by
    `test_fraction`; classes, geometry and the training split's mean/std measured. The three settings are
    checked first, as a recipe's data table checks them (a ConfigError naming the argument), before the
    folder is read."""
    from .data import load_splits
    from .data.folder import data_name, split_root, unpack
    from .recipe import DataConfig
    from .schema import build

    cfg = build(DataConfig, {"dataset": "imagefolder", "test_fraction": test_fraction, "split_seed": split_seed,
                             **({"image_size": image_size} if image_size is not None else {})})
    if not folder.exists():
        raise UserError(f"{folder}: no such folder or archive")
    root = folder.resolve()
    has_splits = split_root(unpack(root) if root.is_file() else root) is not None
    fraction = 0.0 if has_splits else test_fraction
    cfg = dataclasses.replace(cfg, root=str(root), test_fraction=fraction)
    splits = load_splits(cfg)
    return FolderFacts(root=root, name=data_name(root), classes=list(splits.classes), channels=splits.channels,
                       image_size=splits.image_size, native=splits.native, mean=splits.data_mean, std=splits.data_std,
                       train_images=len(splits.train), test_images=len(splits.test), test_fraction=fraction,
                       split_seed=split_seed, notes=list(splits.notes))


def check_models_take(facts: FolderFacts, models: dict[str, str]) -> None:
    """Each model (recipe key → name) can take the folder's images; else one line before anything is written."""
    from .errors import one_line
    from .models import create_model, map_shapes

    for key, name in models.items():
        model = create_model(name, num_classes=len(facts.classes), in_chans=facts.channels)
        try:
            map_shapes(model, facts.image_size)
        except RuntimeError as e:
            raise UserError(f"--{key}: {name} cannot take {facts.channels}×{facts.image_size}×{facts.image_size} "
                            f"images ({one_line(e)}); choose another model, or --image-size") from None


def starter_recipes(facts: FolderFacts, *, student: str, method: str, teacher: str | None, epochs: int,
                    out_dir: Path, runs_dir: Path = Path("runs")) -> list[tuple[Path, str]]:
    """(path, TOML text) of the recipes to write: the teacher's (trained alone) when `method` distils from
    one, then the student's. Each is parsed as a recipe here, so a written file is a valid one."""
    from .methods.registry import method_class
    from .recipe import parse_recipe, toml_value

    files: list[tuple[Path, str]] = []
    teacher_table = ""
    if method_class(method).needs_teacher:
        if teacher is None:
            raise UserError(f"--teacher: method {method} distils from a teacher; name its model (e.g. resnet20)")
        name = f"{facts.name}-teacher-{teacher}"
        path = out_dir / f"{name}.toml"
        files.append((path, _recipe_text(facts, name, teacher, "none", None, epochs, "the teacher, trained alone "
                                         "(cross-entropy): mimkd-edge train " + str(path))))
        teacher_table = (f"\n[teacher]  # trained by {path}\n"
                         f"model = {toml_value(teacher)}\n"
                         f"checkpoint = {toml_value(str(runs_dir / name))}  # its run directory (or its .safetensors)\n"
                         f"recipe = {toml_value(str(path))}  # named in the error if the checkpoint is missing\n")
    name = f"{facts.name}-{student}-{method}"
    path = out_dir / f"{name}.toml"
    verb = "distill" if teacher_table else "train"
    files.append((path, _recipe_text(facts, name, student, method, teacher_table, epochs,
                                     f"the student: mimkd-edge {verb} {path}")))
    for file, text in files:
        parse_recipe(tomllib.loads(text), str(file))  # a programming error if this fails: the text is ours
    return files


def _recipe_text(facts: FolderFacts, name: str, model: str, method: str, teacher_table: str | None, epochs: int,
                 purpose: str) -> str:
    from .recipe import toml_value

    return "\n".join([
        f"# {facts.name}: {purpose}",
        "# Written by `mimkd-edge recipe init`; every key is set, so nothing comes from a default you did not see.",
        "# `mimkd-edge recipe check THIS_FILE --show` validates it and prints the method's own options too.",
        f"name = {toml_value(name)}  # the run directory: runs/{name}",
        "seed = 0",
        "",
        _data_table(facts),
        f"[student]\nmodel = {toml_value(model)}  # `mimkd-edge models` lists every model",
        (teacher_table or "").rstrip("\n"),
        "",
        f"[method]\nname = {toml_value(method)}  # "
        + ("no teacher: cross-entropy alone" if teacher_table is None else "its options keep the paper's defaults"),
        "",
        _train_table(epochs),
    ]).replace("\n\n\n", "\n\n")


def _data_table(f: FolderFacts) -> str:
    from .recipe import toml_value

    c, h, w = f.native
    mean = "[" + ", ".join(f"{v:.4f}" for v in f.mean) + "]"
    std = "[" + ", ".join(f"{v:.4f}" for v in f.std) + "]"
    if f.test_fraction:
        split = (f"test_fraction = {f.test_fraction}  # no train/ and test/ in the folder: this share of each "
                 f"class is the test split ({f.test_images:,} images)\n"
                 f"split_seed = {f.split_seed}  # which images: the same for every run and seed")
    else:
        split = "test_fraction = 0.0  # the folder has its own train/ and test/"
    notes = "".join(f"# note: {n}\n" for n in f.notes)
    crop = f.image_size // 8
    return (f"[data]\n{notes}"
            f"dataset = \"imagefolder\"\n"
            f"root = {toml_value(str(f.root))}  # --data-dir beats it; it beats MIMKD_DATA\n"
            f"{split}\n"
            f"# measured by recipe init ({f.train_images:,} training images); delete a line to measure it at each run\n"
            f"num_classes = {len(f.classes)}  # {', '.join(f.classes[:6])}{', ...' if len(f.classes) > 6 else ''}\n"
            f"channels = {f.channels}  # the images are {'gray' if c == 1 else 'colour'}, {h}×{w}\n"
            f"image_size = {f.image_size}\n"
            f"mean = {mean}  # per channel, pixels in [0, 1], on the training split\n"
            f"std = {std}\n"
            f"# training augmentation, chosen for data the tool has not seen\n"
            f"augment = true  # false: none of the three below\n"
            f"crop_padding = {crop}  # random crop: pad by {crop} pixel(s), crop back at a random offset "
            f"(image_size // 8); 0: off\n"
            f"flip = false  # random horizontal flip: off, as a mirrored digit or letter is another class; "
            f"true for photos of things\n"
            f"cutout = 0  # erase a random square of this side; 0: off\n")


def _train_table(epochs: int) -> str:
    return (f"[train]\n"
            f"epochs = {epochs}  # the CIFAR recipes use the paper's 240; a small data set on a CPU needs far fewer\n"
            f"batch_size = 64\n"
            f"lr = 0.05\n"
            f"schedule = \"cosine\"  # to 0 over the run, step by step\n"
            f"device = \"auto\"  # CUDA when present, else the CPU\n")
