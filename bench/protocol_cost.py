"""What one epoch of each run of a sweep costs on this CPU, measured before the sweep starts, so that its
epochs and seeds are fixed from a stated budget rather than guessed (issue 39).

    python -m bench.protocol_cost recipes/sweeps/protocol.toml --data-dir DATA --threads 1 \
        --out bench/results/protocol/cost-1thread.md

Per distinct recipe of the sweep's student stages (the teacher stage is skipped): one short epoch on a
stratified `--subset` of the training images, through the library's `fit`, at `--threads` torch threads.
The teacher is the recipe's own architecture with freshly initialised weights: what it costs per image
does not depend on its weights, and the sweep's real teacher may still be training. From the run's own
metrics: seconds per training step (the epoch's training time over its steps) and the evaluation time of
the validation and test splits (the epoch's wall time less its training time). The full epoch is then
estimated as steps-per-epoch × seconds-per-step + evaluation, for the recipe's own training set size.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch

from mimkd_edge.atomic import write_text
from mimkd_edge.engine.sweep import load_sweep
from mimkd_edge.engine.trainer import fit
from mimkd_edge.models import create_model
from mimkd_edge.provenance import cpu_name, git_commit
from mimkd_edge.recipe import load_recipe
from mimkd_edge.report.tables import markdown
from mimkd_edge.rundir import read_metrics
from mimkd_edge.rundir.checkpoint import save_weights

CIFAR10_TRAIN = 50_000


def student_recipes(sweep: Path) -> list[Path]:
    """The distinct recipe files of the sweep's stages whose recipes distil from a teacher, in order."""
    cfg = load_sweep(sweep)
    files: list[Path] = []
    for stage in cfg.stage:
        for name in stage.recipes:
            path = Path(name)  # as the sweep reads them: from the working directory (the repository root)
            if path not in files and load_recipe(path).teacher is not None:
                files.append(path)
    return files


def measure(path: Path, work: Path, subset: int, data_dir: str | None, overrides: tuple[str, ...] = ()) -> dict:
    base = load_recipe(path)
    classes, channels = base.data.classes or 10, base.data.channels or 3  # unset: CIFAR-10's, read from the data
    teacher = work / f"{base.teacher.model}-{classes}.safetensors"
    if not teacher.exists():
        torch.manual_seed(0)
        model = create_model(base.teacher.model, num_classes=classes, in_chans=channels)
        save_weights(teacher, model.state_dict(), metadata={"model": base.teacher.model})
    recipe = load_recipe(path, [*overrides, "train.epochs=1", f"data.train_subset={subset}", "train.eval_every=1",
                                f"teacher.checkpoint={json.dumps(str(teacher))}"])
    out = work / recipe.name
    summary = fit(recipe, out, data_dir=data_dir)
    epoch = read_metrics(out)[-1]
    per_step = epoch.seconds / epoch.steps
    evaluation = summary.wall_seconds - epoch.seconds
    train_size = base.data.train_subset or (CIFAR10_TRAIN - base.data.val_split)
    full_steps = math.ceil(train_size / base.train.batch_size)
    return {"recipe": path.stem, "method": base.method.name, "steps": epoch.steps, "s_per_step": per_step,
            "eval_s": evaluation, "train_size": train_size, "epoch_s": full_steps * per_step + evaluation,
            "epochs": base.train.epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--data-dir", default=None, help="the CIFAR-10 archive or folder the sweep trains on")
    parser.add_argument("--subset", type=int, default=2560, help="training images of the measured epoch")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only", default="", help="comma-separated recipe stems to measure (default: all)")
    parser.add_argument("--part", default="1/1", help="I/N: measure every N-th recipe from the I-th (1-based), so "
                        "that N processes side by side measure what N sweep shards running together cost")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for every measured run, as `distill --set` (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="write the table (markdown) here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    index, count = (int(x) for x in args.part.split("/"))
    paths = [p for p in student_recipes(args.sweep) if not args.only or p.stem in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths[index - 1::count]:
            row = measure(path, Path(tmp), args.subset, args.data_dir, tuple(args.overrides))
            rows.append(row)
            print(f"{row['recipe']}: {row['s_per_step'] * 1000:.0f} ms/step, eval {row['eval_s']:.1f} s, "
                  f"epoch of {row['train_size']} images ≈ {row['epoch_s']:.0f} s", flush=True)
    total = sum(r["epoch_s"] * r["epochs"] for r in rows)
    table = markdown(["recipe", "method", "ms/step", "eval s", "train images", "epoch s (est.)",
                      "epochs", "run s (est.)"],
                     [[r["recipe"], r["method"], f"{r['s_per_step'] * 1000:.0f}", f"{r['eval_s']:.1f}",
                       str(r["train_size"]), f"{r['epoch_s']:.0f}", str(r["epochs"]),
                       f"{r['epoch_s'] * r['epochs']:.0f}"] for r in rows])
    text = (f"# One epoch of each run of {args.sweep}, measured\n\n"
            f"`python -m bench.protocol_cost {args.sweep} --subset {args.subset} --threads {args.threads}"
            f"{f' --only {args.only}' if args.only else ''}{''.join(f' --set {o}' for o in args.overrides)} "
            f"--part {args.part}` (beside {count - 1} other part(s)), "
            f"commit {git_commit()}, {cpu_name()}, {args.threads} torch thread(s); each figure from one "
            f"{args.subset}-image epoch.\n\n{table}\n\nOne seed of these recipes at their recipes' epochs: "
            f"{total:.0f} s = {total / 3600:.1f} h at {args.threads} thread(s).\n")
    print(text)
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
