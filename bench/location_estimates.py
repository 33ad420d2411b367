"""Issue 17: is the sampled-location estimate of MIMKD's local and feature terms the same estimate as
the exact one on *trained* critics, and where does the gap between exact and sampled runs come from?

For each finished run given (exact `locations = 0` or sampled `locations = L`), its last checkpoint
(student, critics, standardisers) is loaded and its local and feature JSD bounds (eq. 2) are evaluated
on the first `--images` test images (no augmentation, eval mode) two ways: over every location (the
exact mean) and over L random locations per image and map, averaged over `--draws` draws per batch
(the sampled estimate; its mean over draws must equal the exact value within Monte-Carlo error if it
is unbiased on these critics). Negatives are paired by the method's fixed derangement (image i with
image i−1's teacher, `bounds.derangement`) in both, so that the two differ only in the locations scored.
Evaluating every run's critic with the same exact estimator then says whether the runs' difference in
their training-time estimates is the estimator's or the critics'.

`--refit-steps 100,300` then asks the next question: is the runs' remaining gap in their critics or in
their students? Each run's student and teacher are frozen and its local and feature critics trained on
for that many more steps with the exact objective (every location, the paper's computation), from its
own final critics, at the recipe's last learning rate (SGD, its momentum and weight decay, the same
training images and negatives for every run), and evaluated exactly after each count. If the
sampled-trained critics then close the gap to the exact-trained ones, the students carry the same
mutual information and the gap was the critics' fit; if the gap stays, part of it is the students'.
(Measured: it stays, bench/results/location_estimates.md.)

`--critic-precision fp32|bf16` evaluates every run's critics in that precision instead of the one its
recipe trained them in: run twice on bf16-trained runs, it says whether bf16 arithmetic moves the
estimate itself (bench/results/location_estimates_bf16.md).

    python -m bench.location_estimates runs/cpu-fast-critics/*-s0 runs/cpu-fast-critics/*-s1 \\
        --data-dir CIFAR10_DATA --out bench/results/location_estimates.md
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from mimkd_edge.atomic import write_text
from mimkd_edge.engine.step import TrainStep
from mimkd_edge.engine.trainer import build_training
from mimkd_edge.provenance import git_commit
from mimkd_edge.recipe import load_recipe
from mimkd_edge.rundir import RunDir
from mimkd_edge.rundir.checkpoint import load_checkpoint


def bounds(method, student_f, teacher_f, labels, index, locations: int) -> tuple[float, float]:
    """(local, feature) JSD bounds of one batch with `locations` per image and map (0: every one), as
    the method's own forward computes them (its global term switched off: `global_estimate` scores it)."""
    method.opts = replace(method.opts, locations=locations, feature_locations=None, location_sampling="uniform",
                          lambda_global=0.0)
    estimates = method(student_f, teacher_f, labels, index).estimates
    return float(estimates["mi_local"]), float(estimates["mi_feature"])


def feature_pair_bounds(method, student_f, teacher_f) -> list[float]:
    """The exact feature bound (eq. 5) of each pair of R on its own: which paired map holds a gap."""
    return method.feature_pair_bounds(student_f, teacher_f, locations=0).tolist()


def test_batches(s, images: int):
    """(student features, teacher features, labels, indices) of the first `images` test images, batch by
    batch, in eval mode (the method's JSD negatives: its fixed derangement, the same pairs in every estimate)."""
    seen = 0
    pair = TrainStep(s.student, s.teacher, s.method)
    with torch.inference_mode():
        for batch_x, batch_y, batch_idx in s.test_loader.epoch(0):
            x, y, idx = batch_x[: images - seen], batch_y[: images - seen], batch_idx[: images - seen]
            yield *pair.features(x), y, idx
            seen += len(x)
            if seen >= images:
                break


def global_estimate(s, images: int) -> float:
    """The global infoNCE bound (eq. 3) on the first `images` test images, against negatives drawn from
    the run's trained memory (the same draws for every evaluation: seed 0); eval mode, so the memory
    is not updated."""
    opts = s.method.opts
    s.method.opts = replace(opts, lambda_global=1.0, lambda_local=0.0, lambda_feature=0.0)  # weights: unused
    torch.manual_seed(0)
    values = [float(s.method(sf, tf, y, idx).estimates["mi_global"]) for sf, tf, y, idx in test_batches(s, images)]
    s.method.opts = opts
    return statistics.fmean(values)


def exact_bounds(s, images: int) -> tuple[float, float]:
    """(local, feature) over every location, mean over the first `images` test images' batches."""
    values = [bounds(s.method, sf, tf, y, idx, 0) for sf, tf, y, idx in test_batches(s, images)]
    return tuple(statistics.fmean(v) for v in zip(*values, strict=True))


def refit_critics(s, recipe, counts: list[int], images: int) -> list[dict]:
    """Train the local and feature critics on, student and teacher frozen, with the exact objective;
    the exact test estimates after each of `counts` (cumulative) steps."""
    t = recipe.train
    lr = t.lr * t.gamma ** len(t.milestones)  # where the run's schedule ended
    params = [*s.method.local_critic.parameters(), *s.method.feature_critics.parameters()]
    opt = torch.optim.SGD(params, lr=lr, momentum=t.momentum, weight_decay=t.weight_decay)
    s.method.opts = replace(s.method.opts, locations=0, feature_locations=None, lambda_global=0.0)
    s.student.eval(), s.method.eval()  # eval: the standardisers' statistics stay as trained
    critics = TrainStep(s.student, s.teacher, s.method, opt)
    torch.manual_seed(0)  # the same negatives for every run
    out, step, batches = [], 0, s.train_loader.epoch(0)
    for count in counts:
        while step < count:
            x, y, idx = next(batches)
            with torch.no_grad():
                sf, tf = critics.features(x)
            losses = s.method(sf, tf, y, idx).losses
            critics.update(losses["local"] + losses["feature"])
            step += 1
        local, feature = exact_bounds(s, images)
        out.append({"steps": count, "lr": lr, "local": local, "feature": feature})
        print(f"  refit {count} steps: local {local:.4f}, feature {feature:.4f}", flush=True)
    return out


def load_trained(run: Path, data_dir: str | None):
    """(recipe, training state, checkpoint) of a run as its last checkpoint left it: the student,
    critics and standardisers loaded (weights only), the teacher and data as its recipe builds them."""
    recipe = load_recipe(RunDir(run).recipe)
    s = build_training(recipe, data_dir)
    ckpt = load_checkpoint(RunDir(run).checkpoint)
    ckpt.restore(model=s.student, method=s.method, where=RunDir(run).checkpoint, rng=False)
    return recipe, s, ckpt


def evaluate_run(run: Path, images: int, draws: int, sample: int, data_dir: str | None,
                 refit: list[int], precision: str = "recipe") -> dict:
    recipe, s, ckpt = load_trained(run, data_dir)
    if precision != "recipe":
        s.method.bf16_critics = precision == "bf16"
        s.method.opts = replace(s.method.opts, global_critic_precision="same")  # the global critic too
    s.student.eval(), s.method.eval()
    trained_with = recipe.method.options.locations
    exact, sampled, per_pair = [], [], []  # per batch: (local, feature); the feature pairs' exact bounds
    seen = 0
    gen_state = torch.get_rng_state()
    torch.manual_seed(0)  # the same draws for every run
    for sf, tf, y, idx in test_batches(s, images):
        exact.append(bounds(s.method, sf, tf, y, idx, 0))
        per_pair.append(feature_pair_bounds(s.method, sf, tf))
        sampled.append([statistics.fmean(v) for v in zip(*(bounds(s.method, sf, tf, y, idx, sample)
                                                            for _ in range(draws)), strict=True)])
        seen += len(y)
    glob = global_estimate(s, images) if recipe.method.options.lambda_global > 0 else float("nan")
    torch.set_rng_state(gen_state)
    refits = refit_critics(s, recipe, refit, images) if refit else []
    out = {"refit": refits, "run": run.name, "seed": recipe.seed, "trained_with": trained_with, "images": seen,
           "trained_precision": recipe.method.options.critic_precision,
           "trained_sampling": recipe.method.options.location_sampling,
           "evaluated_in": "bf16" if s.method.bf16_critics else "fp32", "global": glob,
           "epoch": ckpt.epochs_done, "history": ckpt.history[-1].to_dict() if ckpt.history else {},
           "feature_pairs": {"pairs": [list(p) for p in s.method.pairs],
                             "exact": [statistics.fmean(v) for v in zip(*per_pair, strict=True)]}}
    for i, key in enumerate(("local", "feature")):
        e = [b[i] for b in exact]
        d = [sb[i] - b[i] for sb, b in zip(sampled, exact, strict=True)]  # per batch: sampled − exact
        out[key] = {"exact": statistics.fmean(e), "sampled": statistics.fmean(sb[i] for sb in sampled),
                    "diff": statistics.fmean(d), "diff_se": statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else None}
    return out


def render(results: list[dict], args, seconds: float, sample: int) -> str:
    cmd = "python -m bench.location_estimates " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Sampled-location estimates on trained critics (issue 17)", "",
             f"- Command: `{cmd}`",
             f"- Code: commit {git_commit() or '?'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{seconds / 60:.1f} min on this machine",
             f"- Each run's last checkpoint, eval mode, the first {results[0]['images']} test images (batches of "
             f"256, no augmentation); sampled: L = {sample} random locations per image and map, {args.draws} draws "
             "per batch, the same draws for every run (seed 0); negatives: image i with image i−1's teacher "
             "in both. Δ = sampled − exact, mean over batches ± its "
             "standard error (over batches).",
             f"- Critics evaluated in: {', '.join(sorted({r['evaluated_in'] for r in results}))} "
             f"(--critic-precision {args.critic_precision})", "",
             "| run | seed | trained with | epochs | local, exact | local, sampled | Δ local | feature, exact | "
             "feature, sampled | Δ feature | global (infoNCE) | training-time I_local | training-time I_feature |",
             "| --- | --: | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |"]
    for r in results:
        h = r["history"]
        trained = "every location" if r["trained_with"] == 0 else f"L = {r['trained_with']}"
        trained += "" if r.get("trained_sampling", "uniform") == "uniform" or not r["trained_with"] else ", stratified"
        trained += "" if r.get("trained_precision", "fp32") == "fp32" else f", {r['trained_precision']} critics"
        r["trained_label"] = trained
        cells = [r["run"], r["seed"], trained, r["epoch"]]
        for key in ("local", "feature"):
            v = r[key]
            se = "" if v["diff_se"] is None else f" ± {v['diff_se']:.4f}"  # one batch: no spread
            cells += [f"{v['exact']:.4f}", f"{v['sampled']:.4f}", f"{v['diff']:+.4f}{se}"]
        cells.append(f"{r.get('global', float('nan')):.4f}")
        cells += [f"{h.get('mi_local', float('nan')):.3f}", f"{h.get('mi_feature', float('nan')):.3f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += pair_section(results)
    if results[0]["refit"]:
        lines += refit_section(results)
    return "\n".join(lines) + "\n"


def pair_section(results: list[dict]) -> list[str]:
    """The exact feature bound of each pair of R (teacher map, student map) per run."""
    pairs = results[0]["feature_pairs"]["pairs"]
    lines = ["", "## The feature bound pair by pair (exact, the same images and negatives)", "",
             "Eq. 5 averages one JSD bound per pair of R; here each pair's alone, per run.", "",
             "| run | seed | trained with | " + " | ".join(f"pair (teacher {t}, student {u})" for t, u in pairs) + " |",
             "| --- | --: | --- | " + " | ".join(["--:"] * len(pairs)) + " |"]
    for r in results:
        lines.append(f"| {r['run']} | {r['seed']} | {r['trained_label']} | "
                     + " | ".join(f"{v:.4f}" for v in r["feature_pairs"]["exact"]) + " |")
    return lines


def refit_section(results: list[dict]) -> list[str]:
    """Exact estimates before and after refitting every run's critics, and the paired gap per seed."""
    counts = [r["steps"] for r in results[0]["refit"]]
    lines = ["", f"## Critics trained on, students frozen (exact objective, lr {results[0]['refit'][0]['lr']:g})",
             "", "Exact test estimates after that many more critic steps (0: as the run ended).", "",
             "| run | seed | trained with | " + " | ".join(f"local, {c}" for c in [0, *counts]) + " | "
             + " | ".join(f"feature, {c}" for c in [0, *counts]) + " |",
             "| --- | --: | --- | " + " | ".join(["--:"] * 2 * (len(counts) + 1)) + " |"]
    series = {}
    for r in results:
        trained = "every location" if r["trained_with"] == 0 else f"L = {r['trained_with']}"
        row = {key: [r[key]["exact"], *(x[key] for x in r["refit"])] for key in ("local", "feature")}
        series[(r["seed"], r["trained_with"] == 0)] = row  # one of each per seed: checked in main
        lines.append(f"| {r['run']} | {r['seed']} | {trained} | "
                     + " | ".join(f"{v:.4f}" for key in ("local", "feature") for v in row[key]) + " |")
    seeds = sorted({seed for seed, exact in series if (seed, not exact) in series})
    if seeds:
        lines += ["", "Paired gap, sampled-trained − exact-trained run of the same seed:", "",
                  "| seed | " + " | ".join(f"Δ local, {c}" for c in [0, *counts]) + " | "
                  + " | ".join(f"Δ feature, {c}" for c in [0, *counts]) + " |",
                  "| --: | " + " | ".join(["--:"] * 2 * (len(counts) + 1)) + " |"]
        for seed in seeds:
            a, b = series[(seed, False)], series[(seed, True)]
            lines.append(f"| {seed} | " + " | ".join(f"{x - y:+.4f}" for key in ("local", "feature")
                                                       for x, y in zip(a[key], b[key], strict=True)) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data-dir")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--locations", type=int, default=16, help="L of the sampled estimate")
    ap.add_argument("--refit-steps", default="",
                    help="comma-separated cumulative step counts of exact critic training, students frozen")
    ap.add_argument("--critic-precision", choices=("recipe", "fp32", "bf16"), default="recipe",
                    help="evaluate the critics in this precision (recipe: as each run trained them)")
    ap.add_argument("--out")
    args = ap.parse_args()
    refit = [int(c) for c in args.refit_steps.split(",") if c.strip()]
    if refit:  # the refit table pairs one sampled run with one exact run per seed: say so before hours of work
        kinds = [(r.seed, r.method.options.locations == 0) for r in (load_recipe(RunDir(Path(run)).recipe)
                                                                   for run in args.runs)]
        for seed, exact in {k for k in kinds if kinds.count(k) > 1}:
            raise SystemExit(f"--refit-steps: two {'exact' if exact else 'sampled'} runs of seed {seed}; "
                             "give at most one exact and one sampled run per seed")
    t0 = time.perf_counter()
    results = []
    for run in args.runs:
        results.append(evaluate_run(Path(run), args.images, args.draws, args.locations, args.data_dir, refit,
                                    args.critic_precision))
        print(results[-1], flush=True)
    text = render(results, args, time.perf_counter() - t0, args.locations)
    print(text)
    if args.out:
        write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
