"""Where one training step's CPU time goes, per operator, for methods of `train_step.py`.

Runs warm-up steps, then profiles a few steps of each method with torch.profiler and prints the
operators by self CPU time (the share of the step each takes), grouped as matmul / convolution /
element-wise / data movement — the account of what a FLOP count does not see (issue 17).

    python -m bench.profile_step --pairs resnet56:conv4_mp --methods 'kd;mimkd:locations=8'

`--by-shape N` also lists the N costliest (operator, input shapes) rows of each method: which
matmul is the critic's 512 × 512 layer, which element-wise pass runs on hidden-wide tensors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from bench.train_step import make_batch, make_runners

GROUPS = {  # operator name fragments → group; first match wins
    "optimiser": ("_foreach", "sgd"),
    "matmul": ("addmm", "mm", "bmm", "linear", "matmul"),
    "convolution": ("conv", "mkldnn_convolution"),
    "pooling": ("max_pool", "avg_pool", "adaptive_avg_pool"),
    "normalisation": ("batch_norm", "layer_norm"),
    "data movement": ("copy_", "cat", "stack", "index", "gather", "scatter", "permute", "contiguous",
                      "clone", "to_copy", "roll", "expand", "select", "unfold", "fill_", "zero_"),
    "element-wise": ("relu", "clamp", "softplus", "add", "mul", "div", "sub", "threshold", "exp", "log", "sum", "mean",
                     "norm", "max", "where", "sigmoid", "softmax", "neg", "sqrt", "rsqrt", "pow"),
}


def group_of(name: str) -> str:
    op = name.removeprefix("aten::").lower()
    for group, keys in GROUPS.items():
        if any(k == op or op.startswith(k) or op.endswith(k) or (len(k) > 4 and k in op) for k in keys):
            return group
    return "other"


def profile_method(run, batches, by_shape: int = 0) -> dict:
    with profile(activities=[ProfilerActivity.CPU], record_shapes=by_shape > 0) as prof:
        for x, y, index in batches:
            run.step(x, y, index)
    ops = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in ops)
    by_group: dict[str, float] = {}
    for e in ops:
        by_group[group_of(e.key)] = by_group.get(group_of(e.key), 0.0) + e.self_cpu_time_total
    top = sorted(ops, key=lambda e: -e.self_cpu_time_total)[:15]
    shaped = []
    if by_shape:
        rows = [e for e in prof.key_averages(group_by_input_shape=True) if e.key.startswith("aten::")]
        shaped = [{"op": e.key, "shapes": [list(x) for x in e.input_shapes if x],
                   "ms_per_step": e.self_cpu_time_total / 1e3 / len(batches), "calls": e.count // len(batches)}
                  for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[:by_shape]]
    return {"method": run.spec, "steps": len(batches), "self_cpu_ms_per_step": total / 1e3 / len(batches),
            "groups": {g: v / total for g, v in sorted(by_group.items(), key=lambda kv: -kv[1])},
            "top": [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count // len(batches)}
                    for e in top], "by_shape": shaped}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="resnet56:conv4_mp")
    ap.add_argument("--methods", default="kd;mimkd", help="';'-separated method specs")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-samples", type=int, default=50000)
    ap.add_argument("--by-shape", type=int, default=0, help="also list the N costliest (op, input shapes)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    args.channels_last = True
    torch.set_num_threads(args.threads)
    results = []
    for pair in args.pairs.split(","):
        runners = make_runners(pair, [s.strip() for s in args.methods.split(";") if s.strip()], args)
        g = torch.Generator().manual_seed(0)
        batches = [make_batch(g, args, runners[0].student.input_size) for _ in range(args.steps)]
        for run in runners:
            run.step(*batches[0])  # warm-up
            r = {"pair": pair, **profile_method(run, batches, args.by_shape)}
            results.append(r)
            groups = ", ".join(f"{g} {v:.0%}" for g, v in r["groups"].items())
            print(f"\n{pair} {run.spec}: {r['self_cpu_ms_per_step']:.0f} ms self CPU per step; {groups}")
            for t in r["top"]:
                print(f"  {t['share']:6.1%}  {t['op']} ×{t['calls']}")
            for t in r["by_shape"]:
                print(f"  {t['ms_per_step']:7.2f} ms  ×{t['calls']:<3d} {t['op']} {t['shapes']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
