"""Issue 17: how much noise does drawing L locations add to MIMKD's local and feature terms, drawn
uniformly or one per tile (`method.location_sampling = "stratified"`)?

Runs trained on sampled locations end with local and feature bounds a little below the exact runs',
by an amount that falls with L the way the sampling variance does (bench/results/cpu/README.md). Both
draws are unbiased; what differs is the variance of the estimate and of the gradient that trains the
critics and the student. This measures both on a trained run's last checkpoint (student, critics,
standardisers), on batches of training-size (64) test images in eval mode, with one fixed pairing of
negatives, so that the exact and sampled computations differ only in the locations scored:

- per batch, the exact bound (every location) and its gradient g (w.r.t. the critics' parameters and
  the student's parameters, of the local + feature loss terms as the method weighs them);
- per scheme, `--draws` draws of L locations: the bound's mean (≈ exact: unbiased) and its spread,
  and the gradient's relative mean squared error E‖g_d − g‖² / ‖g‖² (its variance, as E g_d = g).

Its sibling `bench.location_noise` asks how that noise scales with L against SGD's own minibatch
noise (critics warmed up on a KD student); this one compares the two draws at one L on the runs' own
trained critics, and checks their bias there.

    python -m bench.location_variance runs/cpu-fast-critics/cpu-conv4_mp-critic_hidden512-locations0-s2 \\
        --data-dir CIFAR10_DATA --out bench/results/location_variance.md
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

from bench.location_estimates import load_trained
from mimkd_edge.atomic import write_text
from mimkd_edge.engine.step import TrainStep
from mimkd_edge.methods.critics import location_strata
from mimkd_edge.models import map_shapes
from mimkd_edge.provenance import git_commit

SCHEMES = ("uniform", "stratified")


def loss_and_grads(s, x, y, idx, locations: int, scheme: str) -> tuple[float, float, torch.Tensor, torch.Tensor]:
    """(local bound, feature bound, flat gradient w.r.t. the critics, flat gradient w.r.t. the
    student) of the local + feature loss terms of one batch, with `locations` drawn by `scheme`."""
    m = s.method
    m.opts = replace(m.opts, locations=locations, feature_locations=None, location_sampling=scheme,
                     lambda_global=0.0)
    critic_params = [*m.local_critic.parameters(), *m.feature_critics.parameters()]
    student_params = [p for p in s.student.parameters() if p.requires_grad]
    out = TrainStep(s.student, s.teacher, m).forward(x, y, idx).output  # the teacher under no_grad
    loss = out.losses["local"] + out.losses["feature"]
    # allow_unused: the student's last block and classifier do not reach these two terms
    grads = torch.autograd.grad(loss, [*critic_params, *student_params], allow_unused=True)
    flat_c = torch.cat([g.reshape(-1) for g in grads[: len(critic_params)]])
    flat_s = torch.cat([g.reshape(-1) for g in grads[len(critic_params):] if g is not None])
    return float(out.estimates["mi_local"]), float(out.estimates["mi_feature"]), flat_c, flat_s


def measure_run(run: Path, data_dir: str | None, batches: int, batch_size: int, draws: int, locations: int) -> dict:
    recipe, s, _ = load_trained(run, data_dir)
    s.method.bf16_critics = False  # every critic fp32: the sampling's noise alone
    s.student.eval(), s.method.eval()
    maps = [(h, w) for _, h, w in map_shapes(s.student, recipe.data.image_size)]
    torch.manual_seed(0)  # the same draws for every run
    per = {k: {"local": [], "feature": [], "local_sd": [], "feature_sd": [], "critic_mse": [], "student_mse": []}
           for k in SCHEMES}
    exact_local, exact_feature, exact_grads, seen = [], [], [], 0
    # negatives: the method's fixed derangement (`bounds.derangement`), the same pairs in every draw
    for x, y, idx in s.test_loader.epoch(0):
        for start in range(0, len(y) - batch_size + 1, batch_size):
            if seen >= batches:
                break
            sl = slice(start, start + batch_size)
            e_local, e_feature, g_c, g_s = loss_and_grads(s, x[sl], y[sl], idx[sl], 0, "uniform")
            exact_local.append(e_local)
            exact_feature.append(e_feature)
            exact_grads.append((g_c, g_s))
            for scheme in SCHEMES:
                draws_out = [loss_and_grads(s, x[sl], y[sl], idx[sl], locations, scheme) for _ in range(draws)]
                r = per[scheme]
                r["local"].append(statistics.fmean(d[0] for d in draws_out) - e_local)
                r["feature"].append(statistics.fmean(d[1] for d in draws_out) - e_feature)
                r["local_sd"].append(statistics.stdev(d[0] for d in draws_out))
                r["feature_sd"].append(statistics.stdev(d[1] for d in draws_out))
                r["critic_mse"].append(statistics.fmean(float((d[2] - g_c).square().sum()) for d in draws_out)
                                       / float(g_c.square().sum()))
                r["student_mse"].append(statistics.fmean(float((d[3] - g_s).square().sum()) for d in draws_out)
                                        / float(g_s.square().sum()))
            seen += 1
            print(f"  {run.name}: batch {seen}/{batches}", flush=True)
        if seen >= batches:
            break
    o = recipe.method.options
    noise = {name: _between_batches([g[i] for g in exact_grads]) for i, name in enumerate(("critics", "student"))}
    return {"batch_mse": noise, "run": run.name, "seed": recipe.seed, "trained_with": o.locations, "batches": seen,
            "exact_local": statistics.fmean(exact_local), "exact_feature": statistics.fmean(exact_feature),
            "maps": maps, "schemes": {k: {key: statistics.fmean(v) for key, v in r.items()} | {
                f"{term}_bias_se": _draw_se(r[f"{term}_sd"], draws) for term in ("local", "feature")}
                for k, r in per.items()}}


def _draw_se(sds: list[float], draws: int) -> float:
    """Standard error of Δ averaged over the batches. The exact value of each batch is computed, not
    drawn, so the draws are Δ's only randomness: Var = Σ_b sd_b² / draws / B² (the draws' own spread,
    steadier than the spread of 8 batch means)."""
    return (sum(sd * sd for sd in sds) / draws) ** 0.5 / len(sds)


def _between_batches(grads: list[torch.Tensor]) -> float:
    """E‖g_b − ḡ‖² / ‖ḡ‖² of exact per-batch gradients: the noise of the minibatch itself, which the
    exact computation has too (ḡ: their mean; B/(B−1) undoes the bias of measuring around it)."""
    stack = torch.stack(grads)
    mean = stack.mean(0)
    b = len(grads)
    return float((stack - mean).square().sum(1).mean()) * b / (b - 1) / float(mean.square().sum())


def render(results: list[dict], args, seconds: float) -> str:
    cmd = "python -m bench.location_variance " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    L = args.locations
    tiles = sorted({(h, w) for r in results for h, w in r["maps"]})
    lines = ["# Noise of the sampled local and feature terms: uniform against stratified draws (issue 17)", "",
             f"- Command: `{cmd}`",
             f"- Code: commit {git_commit() or '?'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"{seconds / 60:.1f} min on this machine",
             f"- Each run's last checkpoint, critics in fp32, eval mode; {results[0]['batches']} batches of "
             f"{args.batch_size} test images; per batch the exact bound and gradient, then {args.draws} draws "
             f"of L = {L} locations per image and map for each scheme (seed 0). Tiles of the stratified "
             "draw: " + ", ".join(f"{h}×{w} map → {t[0]}×{t[1]}" if (t := location_strata(h, w, L)) else
                                  f"{h}×{w} map → {'exact' if h * w <= L else 'uniform (no equal tiles)'}"
                                  for h, w in tiles) + ".",
             "- Δ: mean over draws − exact, averaged over batches (± its standard error, from the draws' spread: "
             "the exact value is computed, so the draws are Δ's only randomness): unbiased means 0 within "
             "about 2 standard errors. sd: the spread of one draw's bound, averaged over batches. Gradient "
             "rel. MSE: E‖g_draw − g_exact‖² / ‖g_exact‖² of the local + feature loss, w.r.t. the critics' "
             "and the student's parameters (the gradient noise sampling adds to one step's). For scale, "
             "the minibatch's own noise, which the exact computation has too: E‖g_batch − ḡ‖² / ‖ḡ‖² of "
             "the exact gradients of these batches around their mean: "
             + "; ".join(f"{r['run']}: critics {r['batch_mse']['critics']:.2f}, student {r['batch_mse']['student']:.2f}"
                         for r in results) + " (relative to the mean over these batches, not per batch as above).", "",
             "| run | scheme | local exact | Δ local | sd local | feature exact | Δ feature | sd feature "
             "| grad rel. MSE, critics | grad rel. MSE, student |",
             "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |"]
    for r in results:
        for scheme, v in r["schemes"].items():
            lines.append(f"| {r['run']} | {scheme} | {r['exact_local']:.4f} | {v['local']:+.4f} ± "
                         f"{v['local_bias_se']:.4f} | {v['local_sd']:.4f} | {r['exact_feature']:.4f} | "
                         f"{v['feature']:+.4f} ± {v['feature_bias_se']:.4f} | {v['feature_sd']:.4f} | "
                         f"{v['critic_mse']:.3f} | {v['student_mse']:.3f} |")
        u, st = r["schemes"]["uniform"], r["schemes"]["stratified"]
        lines.append(f"| {r['run']} | stratified ÷ uniform | | | {st['local_sd'] / u['local_sd']:.2f} | | | "
                     f"{st['feature_sd'] / u['feature_sd']:.2f} | {st['critic_mse'] / u['critic_mse']:.2f} | "
                     f"{st['student_mse'] / u['student_mse']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data-dir")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--draws", type=int, default=16)
    ap.add_argument("--locations", type=int, default=32, help="L of the sampled estimates")
    ap.add_argument("--out")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = [measure_run(Path(run), args.data_dir, args.batches, args.batch_size, args.draws, args.locations)
               for run in args.runs]
    text = render(results, args, time.perf_counter() - t0)
    print(text)
    if args.out:
        write_text(Path(args.out), text)


if __name__ == "__main__":
    main()
