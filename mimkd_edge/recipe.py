"""Recipes: TOML → frozen dataclasses, validated once at load, then trusted everywhere.

A recipe says what to train (`[student]`), from what (`[teacher]`, optional), how (`[method]`:
its name plus that method's options, whose defaults are the paper's weights), on what (`[data]`)
and for how long (`[train]`). `--set key.path=value` overrides are applied to the raw table and
then checked exactly like the file.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomli_w

from .methods.registry import list_methods, method_class
from .models.registry import is_model, list_models
from .schema import ConfigError, build, param, to_table

MAX_IMAGE_SIZE = 4096  # beyond this an input is a mistake, not an image (99999999 asked for 10^18 bytes)
MAX_SEED = 2**32 - 1  # the loader derives per-epoch seeds from it in 64-bit arithmetic
MAX_NAME = 200  # bytes (UTF-8): a file name may have 255, leaving room for temp-file suffixes
NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
# Per-channel statistics of the training sets (CIFAR-100: the paper's; CIFAR-10: the usual ones).
NORMALISATION = {
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["cifar10", "cifar100", "imagefolder", "synthetic"] = "cifar100"
    root: str | None = None  # folder, or .tar.gz/.zip of an image folder; overridden by --data-dir / MIMKD_DATA
    download: bool = False  # let torchvision fetch CIFAR when absent (needs internet)
    num_classes: int | None = param(None, gt=1, le=10**6, help="implied for CIFAR; counted from an image folder's "
                                    "train/ class folders when not given (a value given must agree)")
    image_size: int | None = param(None, gt=0, le=MAX_IMAGE_SIZE, help="side images are read at; default: "
                                   "the data's own (CIFAR 32; an image folder's size, resized to this when set)")
    channels: int | None = param(None, ge=1, le=4, help="1 (gray) or 3 (RGB); default: the data's own")
    mean: float | tuple[float, ...] | None = param(None, help="per channel (one value: every channel); "
                                                  "default: CIFAR's own, or measured on an image folder's train split")
    std: float | tuple[float, ...] | None = param(None, gt=0, help="as mean")
    test_fraction: float = param(0.0, ge=0, lt=1, help="a folder of class folders without train/ and test/: the "
                                 "share of each class's images held out as the test split (drawn by data.split_seed, "
                                 "the same files for every run); 0: the folder has its own train/ and test/")
    split_seed: int = param(0, ge=0, le=MAX_SEED, help="the draw of data.test_fraction's test images")
    augment: bool = True  # training augmentation: data.crop_padding, data.flip and data.cutout; false turns all off
    crop_padding: int | None = param(None, ge=0, le=MAX_IMAGE_SIZE, help="random crop: pad by this many pixels, "
                                     "crop back to size at a random offset; 0: off. Default: 4 for CIFAR and the "
                                     "synthetic set, image_size // 8 for an image folder (4 at 32 pixels)")
    flip: bool | None = param(None, help="random horizontal flip. Default: on for CIFAR and the synthetic set, off "
                              "for an image folder: a mirrored digit or letter is another class, or none")
    cutout: int = param(0, ge=0, le=MAX_IMAGE_SIZE, help="with augment: erase a random square of this side in "
                        "every training image (Cutout, DeVries & Taylor 2017; its CIFAR-10 setting: 16); 0: off")
    val_split: int = param(0, ge=0, le=10**7, help="training images held out as a validation split (stratified by "
                           "class, the same images for every run and seed): every choice is made on it, the test "
                           "split is kept for the final figures; 0: none")
    train_subset: int = param(0, ge=0, le=10**7, help="train on this many of the training images (stratified by "
                              "class, the same ones every run; after the validation split), for quick runs; 0: all")
    resident_max_gb: float = param(4.0, ge=0, help="a split whose decoded uint8 images exceed this many GiB "
                                   "streams from disk through DataLoader workers (image folders only)")
    workers: int | None = param(None, ge=0,
                                help="DataLoader workers of a streamed split (default: the CPUs, at most 8)")
    synthetic_train: int = param(512, gt=0, le=10**7, help="synthetic set: training images")
    synthetic_test: int = param(256, gt=0, le=10**7, help="synthetic set: test images")

    @property
    def classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if self.dataset == "imagefolder":  # a programming error: build_session fills it in from the folder
            raise ValueError("data.num_classes of an image folder is known once its splits are loaded")
        return NUM_CLASSES.get(self.dataset, 10)

    def default_augmentation(self, image_size: int) -> tuple[int, bool]:
        """(crop padding, flip) where the recipe sets none: CIFAR's usual crop with 4-pixel padding and
        flip; for an image folder the crop scaled to its size and no flip, as a flip can change a class."""
        if self.dataset == "imagefolder":
            return (image_size // 8 if self.crop_padding is None else self.crop_padding,
                    False if self.flip is None else self.flip)
        return 4 if self.crop_padding is None else self.crop_padding, True if self.flip is None else self.flip

    @property
    def default_normalisation(self) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
        """(mean, std) when the recipe gives none: CIFAR's published statistics, 0.5 / 0.25 for the
        synthetic set, None for an image folder (load_splits measures its training split)."""
        if self.dataset == "imagefolder":
            return None, None
        return NORMALISATION.get(self.dataset, ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))


@dataclass(frozen=True)
class StudentConfig:
    model: str


@dataclass(frozen=True)
class TeacherConfig:
    model: str
    checkpoint: str  # the weights file of a finished `mimkd-edge train` run, or its run directory
    recipe: str | None = None  # the recipe that trains it, named in errors when the checkpoint is absent


@dataclass(frozen=True)
class MethodConfig:
    name: str
    options: Any  # the method's own frozen Options dataclass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = param(240, gt=0, le=100_000)
    batch_size: int = param(64, gt=0, le=1 << 20)
    lr: float = param(0.05, gt=0)
    momentum: float = param(0.9, ge=0, lt=1)
    weight_decay: float = param(5e-4, ge=0)
    schedule: Literal["step", "cosine"] = "step"  # step: × gamma at milestones (the paper's); cosine: to 0 per step
    milestones: tuple[int, ...] = param((150, 180, 210), gt=0, help="epochs of the step schedule")
    gamma: float = param(0.1, gt=0, le=1, help="the step schedule's factor")
    warmup_epochs: int = param(0, ge=0, le=100_000, help="cosine schedule: epochs of linear warm-up from 0")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    channels_last: bool = True  # faster convolutions on CPU and on tensor cores
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    # the frozen teacher's forward pass: "same" as the student's, or under bf16 autocast (its outputs handed
    # to the method in fp32) — on a CPU with native bf16 the teacher is most of a distillation step's cost
    # auto: bf16 on a CPU with native bf16 (cpuinfo.torch_native_bf16), else as the student's
    teacher_precision: Literal["same", "bf16", "auto"] = "same"
    compile: bool = False  # torch.compile the student's forward (falls back to eager if it fails)
    eval_every: int = param(1, gt=0, le=100_000, help="evaluate on the test set every N epochs (and at the last)")
    log_every: int = param(20, gt=0, le=10**9, help="steps between progress updates (each one syncs the device)")


@dataclass(frozen=True)
class Recipe:
    name: str
    student: StudentConfig
    method: MethodConfig
    seed: int = 0
    data: DataConfig = DataConfig()
    teacher: TeacherConfig | None = None
    train: TrainConfig = TrainConfig()

    def to_table(self) -> dict:
        """The resolved recipe as a TOML-able table (method options flattened into [method])."""
        table = to_table(dataclasses.replace(self, method=None))
        table["method"] = {"name": self.method.name, **to_table(self.method.options)}
        return table


_TOP_KEYS = ("name", "seed", "data", "student", "teacher", "method", "train")


def parse_recipe(raw: dict, source: str = "") -> Recipe:
    """Validate a raw TOML table into a Recipe; every error names `source` and the key path."""
    try:
        return _parse(raw)
    except ConfigError as e:
        raise e.at(source) from None


def _parse(raw: dict) -> Recipe:
    _check_text(raw, "")
    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(key, f"one of the known keys ({', '.join(_TOP_KEYS)})", key)
    if "name" not in raw:
        raise ConfigError("name", "a value (this key is required)")
    name = raw["name"]
    if not _is_run_name(name):
        raise ConfigError("name", f"a run directory name: 1-{MAX_NAME} bytes of printable characters, no '/' or '\\', "
                          "not '.' or '..'", name)
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError("seed", f"an integer from 0 to {MAX_SEED}", seed)
    data = build(DataConfig, raw.get("data", {}), "data")
    data = dataclasses.replace(data, mean=_per_channel(data.mean, "data.mean"), std=_per_channel(data.std, "data.std"))
    student, teacher = _parse_models(raw)
    method = _parse_method(raw.get("method", {"name": "none"}))
    if method_class(method.name).needs_teacher and teacher is None:
        raise ConfigError("teacher", f"a [teacher] table (method \"{method.name}\" distils from a teacher)")
    train = _parse_train(raw.get("train", {}))
    return Recipe(name=name, seed=seed, data=data, student=student, teacher=teacher, method=method, train=train)


def _parse_models(raw: dict) -> tuple[StudentConfig, TeacherConfig | None]:
    if "student" not in raw:
        raise ConfigError("student", "a [student] table with the model to train")
    student = build(StudentConfig, raw["student"], "student")
    _check_model(student.model, "student.model")
    teacher = None
    if raw.get("teacher") is not None:
        teacher = build(TeacherConfig, raw["teacher"], "teacher")
        _check_model(teacher.model, "teacher.model")
    return student, teacher


def _parse_train(table: Any) -> TrainConfig:
    train = build(TrainConfig, table, "train")
    if train.schedule == "cosine" and train.warmup_epochs >= train.epochs:
        raise ConfigError("train.warmup_epochs", f"fewer than train.epochs ({train.epochs})", train.warmup_epochs)
    if list(train.milestones) != sorted(set(train.milestones)):
        raise ConfigError("train.milestones", "strictly increasing epochs", list(train.milestones))
    if train.device != "auto" and train.device != "cpu" and not train.device.startswith("cuda"):
        raise ConfigError("train.device", "\"auto\", \"cpu\", \"cuda\" or \"cuda:N\"", train.device)
    return train


def _per_channel(value: float | tuple[float, ...] | None, key: str) -> tuple[float, ...] | None:
    """One value for every channel (kept as one: load_splits repeats it per channel), or one per channel."""
    if value is None:
        return None
    return (value,) if isinstance(value, float) else tuple(value)


def _check_text(value: Any, path: str) -> None:
    """Every string (keys too) is text a file can hold: an undecodable byte of a command-line argument
    (`--set data.root=...`) arrives as a lone surrogate, which no UTF-8 recipe.toml can store."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path)
            _check_text(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_text(item, f"{path}[{i}]")
    elif isinstance(value, str) and not _encodable(value):
        shown = path.encode("utf-8", "backslashreplace").decode("utf-8")
        raise ConfigError(shown, "text that is valid Unicode (an undecodable byte cannot be written to recipe.toml)")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_run_name(name: Any) -> bool:
    """The name becomes runs/<name>/: it must stay one directory inside the runs root."""
    return (isinstance(name, str) and 0 < len(name.encode()) <= MAX_NAME and name.isprintable()
            and not any(c in name for c in "/\\") and name not in (".", ".."))


def _check_model(name: Any, path: str) -> None:
    if not isinstance(name, str) or not is_model(name):
        examples = ", ".join(list_models()[:4])
        raise ConfigError(path, f"a model name from `mimkd-edge models` (e.g. {examples}, ...)", name)


def _parse_method(table: Any) -> MethodConfig:
    if not isinstance(table, dict):
        raise ConfigError("method", "a table", table)
    name = table.get("name")
    if name not in list_methods():
        raise ConfigError("method.name", "one of " + ", ".join(list_methods()), name)
    options = build(method_class(name).Options, {k: v for k, v in table.items() if k != "name"}, "method")
    return MethodConfig(name, options)


def parse_recorded_recipe(raw: dict, source: str = "") -> Recipe:
    """A recipe as a run recorded it. Runs trained before data.crop_padding and data.flip existed record
    neither: they trained with a 4-pixel crop and flips on every data set, which is filled in here, so that
    resuming such a run under today's image-folder defaults (no flip) is seen as the change it is."""
    data = raw.get("data")
    if isinstance(data, dict) and "crop_padding" not in data and "flip" not in data:
        raw = {**raw, "data": {**data, "crop_padding": 4, "flip": True}}
    return parse_recipe(raw, source)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=0.1` → (["train", "lr"], 0.1); the value is read as TOML, else taken as a string."""
    if "=" not in text:
        raise ConfigError("--set", "KEY.PATH=VALUE", text)
    key, _, value = text.partition("=")
    path = [p.strip() for p in key.strip().split(".")]
    if not all(path):
        raise ConfigError("--set", "KEY.PATH=VALUE", text)
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return path, parsed


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `--set` overrides to a raw table. Changing method.name drops the file's other method
    options, so the new method starts from its own paper defaults."""
    out = copy.deepcopy(raw)
    parsed = [parse_override(o) for o in overrides]
    for path, value in parsed:
        if path == ["method", "name"] and isinstance(out.get("method"), dict) and out["method"].get("name") != value:
            out["method"] = {}
    for path, value in parsed:
        node = out
        for i, key in enumerate(path[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(".".join(path[: i + 1]), "a table to set keys in", nxt)
            node = nxt
        node[path[-1]] = value
    return out


def read_toml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("", "an existing recipe file (no such file)", source=str(p))
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"valid TOML ({e})", source=str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError("", "a UTF-8 text file", source=str(p)) from None


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override and validate a recipe file."""
    raw = read_toml(path)
    try:
        raw = apply_overrides(raw, list(overrides))
    except ConfigError as e:
        raise e.at(str(path)) from None
    return parse_recipe(raw, str(path))


def dump_recipe(recipe: Recipe) -> str:
    """TOML text of a resolved recipe (written beside every run)."""
    return dumps_toml(recipe.to_table())


def dumps_toml(table: dict) -> str:
    """TOML text of a table: scalars first, then one [section] per sub-table. Written by tomli-w, which
    escapes every string TOML needs escaped (a data.root with a newline or ESC reads back as itself)."""
    return tomli_w.dumps(table)


def toml_value(v: Any) -> str:
    """A Python value as a one-line TOML literal (a sweep's grid value becomes a `--set KEY=VALUE`)."""
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        raise TypeError("toml_value writes single values; use dumps_toml for tables")
    return tomli_w.dumps({"v": v}).removeprefix("v = ").removesuffix("\n")
