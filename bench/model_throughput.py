"""Training and inference throughput of zoo models on this CPU: what choosing a teacher (or a student)
for a CPU-bound protocol costs, measured side by side in one process.

    python -m bench.model_throughput --models wrn_16_2,resnet56,vgg13 --out bench/results/model_throughput.md

Per model: images/s of a full SGD step (forward, cross-entropy, backward, step) at --batch on random
32×32 inputs, in fp32 and under bf16 autocast, and images/s of a no-grad forward at --infer-batch (what
a teacher adds to every distillation step). Channels-last, as the trainer runs. Warm-up steps first;
each figure is the best of --repeats timed blocks (a shared machine's noise only ever slows a block).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from mimkd_edge.atomic import write_text
from mimkd_edge.models import count_macs, create_model
from mimkd_edge.provenance import cpu_name, git_commit
from mimkd_edge.report.tables import markdown


def best_rate(fn, images: int, steps: int, repeats: int) -> float:
    fn(), fn()  # warm-up: allocator, kernel selection
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        best = max(best, images * steps / (time.perf_counter() - start))
    return best


def measure(name: str, batch: int, infer_batch: int, steps: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=3).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
    x = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    row = {"model": name, "macs": count_macs(model, 32)}
    for precision in ("fp32", "bf16"):
        def step(precision=precision):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        row[f"train_{precision}"] = best_rate(step, batch, steps, repeats)
    model.eval()
    xi = torch.randn(infer_batch, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.no_grad():
        row["infer_fp32"] = best_rate(lambda: model(xi), infer_batch, steps, repeats)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="wrn_16_2,resnet56,resnet8x4,vgg8,vgg13")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--infer-batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        r = measure(name, args.batch, args.infer_batch, args.steps, args.repeats)
        print(f"{name}: train fp32 {r['train_fp32']:.0f}, bf16 {r['train_bf16']:.0f}, "
              f"infer {r['infer_fp32']:.0f} img/s", flush=True)
        rows.append(r)
    table = markdown(["model", "MACs", f"train img/s fp32 (batch {args.batch})", "train img/s bf16 autocast",
                      f"inference img/s fp32 (batch {args.infer_batch})"],
                     [[r["model"], f"{r['macs'] / 1e6:.1f} M", f"{r['train_fp32']:.0f}", f"{r['train_bf16']:.0f}",
                       f"{r['infer_fp32']:.0f}"] for r in rows], align=["l", "r", "r", "r", "r"])
    head = (f"# Model throughput\n\n`python -m bench.model_throughput --models {args.models} --out {args.out}`, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}; {cpu_name() or platform.processor()}, torch "
            f"{torch.__version__}, {torch.get_num_threads()} threads, commit {git_commit()}.\n\n")
    if args.out:
        write_text(args.out, head + table)
    print(table)


if __name__ == "__main__":
    main()
