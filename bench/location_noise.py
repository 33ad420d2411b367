"""How much gradient noise MIMKD's sampled locations add, against the noise SGD already has (issue 17).

`method.locations = L` replaces the mean over H×W locations of the local and feature terms by the
mean over L random ones: unbiased, but noisier. The question that chooses L is whether that extra
noise matters next to the minibatch noise every SGD step already carries. On real batches, with a
trained teacher and student and paper-width critics warmed up first:

- batch noise: the spread, over B batches, of the exact step's gradient on the student (every term);
- sampling noise at L: the spread, over D draws on the same batch, of the sampled local + feature
  gradient around that batch's exact local + feature gradient (the global term and CE are not
  sampled, and their gradient is the same in every draw).

Their ratio says what sampling costs in SGD terms: the step's gradient variance grows by that factor
(a ratio of 0.1 is the noise of a 10% smaller batch). Also printed: the spread of the MI estimates.

    python -m bench.location_noise --teacher bench/results/cpu/runs/cpu-teacher-resnet20-s0 \\
        --student bench/results/cpu/runs/cpu-conv4_mp-kd-s0 --data-dir CIFAR10_DATA
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from mimkd_edge.data import BatchLoader, load_splits
from mimkd_edge.engine.step import TrainStep, method_context
from mimkd_edge.methods import create_method, method_class
from mimkd_edge.rundir import load_run
from mimkd_edge.schema import build

SAMPLED = ("local", "feature")


def flat_grad(loss: torch.Tensor, params: list[torch.Tensor], retain: bool = False) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params,
                                                                                             strict=True)])


def warm_up(pair: TrainStep, batches, steps: int) -> None:
    """Critic-only SGD (the student fixed: its features detached), L = 16, which also fills the teacher memory."""
    method = pair.method
    critics = TrainStep(pair.student, pair.teacher, method, torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9))
    method.opts = dataclasses.replace(method.opts, locations=16)
    for step in range(steps):
        x, y, idx = next(batches)
        s, t = critics.features(x)
        out = method(s.detach(), t, y, idx)
        critics.update(out.total)
        if step % 20 == 0:
            print(f"warm-up {step}/{steps}: " + ", ".join(f"{k} {float(v):.3f}" for k, v in out.estimates.items()),
                  flush=True)


def measure(pair: TrainStep, batches, params, args):
    """Per batch: the exact step's whole gradient, and the sampled local + feature gradient's squared
    distance to the exact one, `args.draws` times for every L."""
    sizes = [int(v) for v in args.locations.split(",")]
    totals, sampling = [], {L: [] for L in sizes}
    spread = {L: {"mi_local": [], "mi_feature": []} for L in sizes}
    exact_est = {"mi_local": [], "mi_feature": []}
    method, features = pair.method, pair.features
    started = time.time()
    for b in range(args.batches):
        x, y, idx = next(batches)
        method.opts = dataclasses.replace(method.opts, locations=0)
        s, t = features(x)
        out = method(s, t, y, idx)
        lf = sum(out.losses[k] for k in SAMPLED)
        g_lf = flat_grad(lf, params, retain=True)
        totals.append(flat_grad(out.total - lf, params) + g_lf)
        for k in exact_est:
            exact_est[k].append(float(out.estimates[k]))
        for L in sizes:
            method.opts = dataclasses.replace(method.opts, locations=L)
            for _ in range(args.draws):
                s, t = features(x)
                out = method(s, t, y, idx)
                g = flat_grad(sum(out.losses[k] for k in SAMPLED), params)
                sampling[L].append(float((g - g_lf).pow(2).sum()))
                for k in spread[L]:
                    spread[L][k].append(float(out.estimates[k]) - exact_est[k][-1])
        print(f"batch {b + 1}/{args.batches} ({time.time() - started:.0f} s)", flush=True)
    return totals, sampling, spread, exact_est


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="finished teacher run directory")
    ap.add_argument("--student", required=True, help="finished student run directory (its weights and data)")
    ap.add_argument("--data-dir")
    ap.add_argument("--locations", default="4,8,16,32")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--draws", type=int, default=6)
    ap.add_argument("--warmup-steps", type=int, default=100, help="critic-only SGD steps first (L = 16)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="bench/results/location_noise.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher, student = load_run(args.teacher).model.eval(), load_run(args.student)
    recipe, model = student.recipe, student.model.train()
    splits = load_splits(recipe.data, args.data_dir)
    loader = BatchLoader(splits.train, 64, splits.mean, splits.std, train=True, seed=0, channels_last=True)
    teacher, model = (m.to(memory_format=torch.channels_last) for m in (teacher, model))
    ctx = method_context(model, teacher, num_classes=len(splits.classes), num_samples=len(splits.train),
                         input_size=splits.image_size)
    method = create_method("mimkd", build(method_class("mimkd").Options, {}), ctx)  # the paper's settings
    pair = TrainStep(model, teacher, method)  # its features: the teacher's under no_grad, the student's
    batches = loader.epoch(0)

    warm_up(pair, batches, args.warmup_steps)
    method.eval()  # from here the memory and the standardisers stay as they are
    params = [p for p in model.parameters() if p.requires_grad]
    totals, sampling, spread, exact_est = measure(pair, batches, params, args)
    g = torch.stack(totals)
    batch_var = float((g - g.mean(0)).pow(2).sum(1).sum() / (len(totals) - 1))
    rows = []
    for L in sampling:
        var = sum(sampling[L]) / len(sampling[L])
        rows.append({"locations": L, "sampling_var": var, "batch_var": batch_var, "ratio": var / batch_var,
                     **{f"{k}_std": float(torch.tensor(v).std()) for k, v in spread[L].items()}})
    result = {"command": shlex.join(["python", "-m", "bench.location_noise",
                                     *(argv if argv is not None else sys.argv[1:])]),
              "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "teacher": args.teacher, "student": args.student, "batches": args.batches, "draws": args.draws,
              "exact_estimates": exact_est, "grad_norm_mean": float(g.mean(0).norm()), "rows": rows}
    print(f"\nbatch-to-batch gradient variance (exact step, every term): {batch_var:.4g}; "
          f"|mean gradient|² {float(g.mean(0).norm()) ** 2:.4g}")
    print("| L | sampling variance | ÷ batch variance | mi_local spread (std) | mi_feature spread (std) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['locations']} | {r['sampling_var']:.4g} | {r['ratio']:.3f} | {r['mi_local_std']:.4f} "
              f"| {r['mi_feature_std']:.4f} |")
    Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
