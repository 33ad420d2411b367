"""Epoch time of a paper-pair distillation through the real trainer: eager vs torch.compile, fp32 vs
bf16, and the 240-epoch time it projects. Written for a CUDA card (issue 7's target: a 240-epoch
CIFAR-size MIMKD run in under 10 minutes on one H100); it runs on CPU too, to check the harness.

Each variant trains one epoch of RECIPE with `mimkd_edge.engine.trainer.fit` (so what is timed is
what users run: device-resident data, the step, the per-interval loss reduction) from a teacher with
random weights — speed does not depend on the teacher's accuracy, and no teacher has to be trained
first. Steady-state speed is taken between the trainer's step events after the first one, so the
compile warm-up and cuDNN autotuning are left out; the epoch's own wall time (warm-up included) is
reported beside it. `--max-images N` stops each variant once it has trained about N images (the
steady rate needs no whole epoch; bench.gpu_check uses it to fit a short GPU lease), and then
no epoch wall time is reported.

    # on a GPU machine:
    python -m bench.gpu_epoch --data CIFAR10_DATA
    # harness check on CPU:
    python -m bench.gpu_epoch --device cpu --set data.dataset=\"synthetic\" --set data.synthetic_train=1024 \
        --set train.log_every=2 --teacher resnet8 --student conv4 --variants fp32:eager,bf16:eager
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from collections.abc import Iterable, Iterator

import torch

from mimkd_edge.atomic import write_json
from mimkd_edge.rundir.checkpoint import save_weights
from mimkd_edge.engine.trainer import fit
from mimkd_edge.models import create_model
from mimkd_edge.recipe import load_recipe

DEFAULT_VARIANTS = "fp32:eager,bf16:eager,fp32:compile,bf16:compile"


class _Enough(Exception):
    """Raised from the trainer's event callback once a variant has trained its `max_steps`."""


def random_teacher(model: str, classes: int, path: Path) -> Path:
    """A teacher weights file with random weights: step speed does not depend on what it knows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights(path, create_model(model, num_classes=classes).state_dict(), metadata={"model": model})
    return path


def run_variant(recipe_path: str, overrides: list[str], data_dir: str | None, work: Path, name: str,
                max_steps: int | None = None) -> dict:
    recipe = load_recipe(recipe_path, overrides)
    marks: list[tuple[float, int]] = []  # (time, images seen this epoch) at every step event
    events: list[str] = []
    started: dict = {}

    def on_event(kind: str, info: dict) -> None:
        if kind == "start":
            started.update(info)
        elif kind == "step":
            marks.append((time.perf_counter(), info["step"] * recipe.train.batch_size))
            if max_steps and info["step"] >= max_steps:
                raise _Enough
        elif kind == "warning":
            events.append(info["message"])

    try:
        summary = fit(recipe, work / name, data_dir=data_dir, on_event=on_event)
    except _Enough:
        summary = None  # stopped on purpose: the steady rate is measured, the epoch is not finished
    train_size = started["train_size"]
    steady = marks[1:]
    images = steady[-1][1] - steady[0][1] if len(steady) > 1 else 0
    seconds = steady[-1][0] - steady[0][0] if len(steady) > 1 else float("nan")
    rate = images / seconds if images else float("nan")
    return {"variant": name, "precision": recipe.train.precision, "compile": recipe.train.compile,
            "batch": recipe.train.batch_size, "steady_images_per_s": rate,
            "steady_ms_per_step": 1000 * recipe.train.batch_size / rate if images else None,
            "steady_images_timed": images,
            "epoch_wall_s_with_eval": summary.wall_seconds if summary else None,
            "projected_240_epochs_min": 240 * train_size / rate / 60, "train_size": train_size,
            "steps_per_epoch": started["steps"], "warnings": events}


def parse_specs(batches: Iterable[int], variants: str) -> list[tuple[int, str, str]]:
    """(batch, precision, mode) for every batch × "precision:mode" entry, batch by batch."""
    return [(b, *spec.split(":")) for b in batches for spec in variants.split(",")]  # type: ignore[misc]


def measure(recipe_path: str, specs: list[tuple[int, str, str]], work: Path, *, data: str | None = None,
            device: str = "cuda", teacher: str | None = None, student: str | None = None,
            sets: Iterable[str] = (), max_images: int | None = None) -> Iterator[dict]:
    """Yield one result row per (batch, precision, mode) spec, in order, as each one finishes."""
    sets = list(sets)
    base = load_recipe(recipe_path, [f"train.device={json.dumps(device)}", *sets])
    teacher_model = teacher or base.teacher.model
    overrides = [f"train.device={json.dumps(device)}", "train.epochs=1", "train.milestones=[1]",
                 "data.dataset=\"cifar10\"", *sets]
    if student:
        overrides.append(f"student.model={json.dumps(student)}")
    classes = load_recipe(recipe_path, overrides).data.classes
    teacher_file = random_teacher(teacher_model, classes, work / "teacher" / "model.safetensors")
    overrides += [f"teacher.model={json.dumps(teacher_model)}", f"teacher.checkpoint={json.dumps(str(teacher_file))}"]
    for batch, precision, mode in specs:
        name = f"b{batch}-{precision}-{mode}"
        variant = [*overrides, f"train.batch_size={batch}", f"train.precision=\"{precision}\"",
                   f"train.compile={'true' if mode == 'compile' else 'false'}"]
        max_steps = None
        if max_images:  # enough steps for about max_images images, and ten step events to time them by
            max_steps = max(20, -(-max_images // batch))
            variant.append(f"train.log_every={max(1, max_steps // 10)}")
        yield run_variant(recipe_path, variant, data, work, name, max_steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/paper/resnet32x4-resnet8x4.toml")
    ap.add_argument("--data", help="data root or archive (e.g. the shared CIFAR-10 tar.gz)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--teacher", help="override the recipe's teacher model (random weights either way)")
    ap.add_argument("--student", help="override the recipe's student model")
    ap.add_argument("--batch", type=int, action="append", help="global batch size(s) to try [recipe's]")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    ap.add_argument("--max-images", type=int, help="stop each variant after about this many images [one epoch]")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra recipe override (key=value)")
    ap.add_argument("--out", default="bench/results/gpu_epoch.json")
    args = ap.parse_args()

    batches = args.batch or [load_recipe(args.recipe, args.sets).train.batch_size]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in measure(args.recipe, parse_specs(batches, args.variants), Path(tmp), data=args.data,
                           device=args.device, teacher=args.teacher, student=args.student, sets=args.sets,
                           max_images=args.max_images):
            rows.append(row)
            print(f"{row['variant']:<22} {row['steady_images_per_s']:>9.0f} img/s  "
                  f"{row['steady_ms_per_step'] or float('nan'):>7.2f} ms/step  "
                  f"240 epochs ≈ {row['projected_240_epochs_min']:.1f} min" +
                  (f"  ({'; '.join(row['warnings'])})" if row["warnings"] else ""))
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available() \
        else platform.processor() or platform.machine()
    write_json(args.out, {"args": vars(args), "rows": rows, "device": device, "torch": torch.__version__,
                          "date": time.strftime("%Y-%m-%d %H:%M"),
                          "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                text=True, check=False).stdout.strip()})


if __name__ == "__main__":
    main()
