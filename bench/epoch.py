"""CPU epoch time of a distillation step loop with our data paths against the usual torchvision
DataLoader + PIL transforms pipeline, and the share of time each spends waiting for data.

Three pipelines feed the same step (teacher forward under no_grad, student forward, method loss,
SGD): our device-resident batches and the torchvision pipeline over the same in-memory CIFAR-10
images, and our streaming path (what a data set over `data.resident_max_gb` gets: DataLoader workers
decoding the JPEG files batch by batch, crop/flip/normalise batched after). They run interleaved in
chunks of steps so machine noise hits all alike. "Data wait" is the time between asking the pipeline
for a batch and having it as a normalised float tensor (for DataLoader, what the workers did not hide).

    python -m bench.epoch --data CIFAR10_DATA --steps 120 --chunk 20
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from mimkd_edge.atomic import write_json
from mimkd_edge.data import BatchLoader, StreamingLoader, load_splits
from mimkd_edge.engine.step import TrainStep, method_context
from mimkd_edge.methods import create_method, method_class
from mimkd_edge.models import create_model
from mimkd_edge.recipe import DataConfig
from mimkd_edge.schema import build


class PilCifar(Dataset):
    """What the reference CIFAR KD code does per image: uint8 array → PIL → transforms → tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, 3) as the pickle gives them
        self.labels = labels.numpy()
        self.tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                      transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.tf(Image.fromarray(self.images[i])), int(self.labels[i]), i


def timed_chunk(batches, step, n: int) -> tuple[float, float, int]:
    """Run n steps from the iterator `batches`: (seconds waiting for data, seconds total, images)."""
    wait, images, start = 0.0, 0, time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        x, y, idx = next(batches)
        x = x.contiguous(memory_format=torch.channels_last)
        wait += time.perf_counter() - t0
        step(x, torch.as_tensor(y), torch.as_tensor(idx))
        images += len(y)
    return wait, time.perf_counter() - start, images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("MIMKD_DATA"), required="MIMKD_DATA" not in os.environ,
                    help="CIFAR-10 source (a --data-dir value); default: MIMKD_DATA")
    ap.add_argument("--teacher", default="resnet56")
    ap.add_argument("--student", default="conv4_mp")
    ap.add_argument("--method", default="mimkd", help="kd or none make data loading matter more")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=120, help="timed steps per pipeline")
    ap.add_argument("--chunk", type=int, default=20, help="steps per pipeline before switching")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers (torchvision and streamed pipelines)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/epoch.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    splits = load_splits(DataConfig(dataset="cifar10"), args.data)
    n_classes = len(splits.classes)
    teacher = create_model(args.teacher, n_classes).eval().to(memory_format=torch.channels_last)
    student = create_model(args.student, n_classes).to(memory_format=torch.channels_last)
    ctx = method_context(student, teacher, num_classes=n_classes, num_samples=len(splits.train),
                         input_size=splits.image_size)
    method = create_method(args.method, build(method_class(args.method).Options, {}), ctx)
    optimizer = torch.optim.SGD([*student.parameters(), *method.parameters()], lr=0.05, momentum=0.9, foreach=True)
    step = TrainStep(student, teacher, method, optimizer)

    ours = BatchLoader(splits.train, args.batch, splits.mean, splits.std, train=True, seed=0)
    loader = DataLoader(PilCifar(splits.train.images, splits.train.labels, splits.mean, splits.std),
                        batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                        persistent_workers=args.workers > 0)

    def forever(make):
        while True:
            yield from make()

    on_disk = load_splits(DataConfig(dataset="cifar10", resident_max_gb=0.0), args.data).train  # the JPEG files
    streamed = StreamingLoader(on_disk, args.batch, splits.mean, splits.std, train=True, seed=0, workers=args.workers)
    baseline = f"torchvision DataLoader + PIL ({args.workers} workers)"
    pipelines = {"mimkd-edge (device-resident)": forever(lambda: ours.epoch(0)),
                 baseline: forever(lambda: iter(loader)),
                 f"mimkd-edge streamed from JPEG files ({args.workers} workers)": forever(lambda: streamed.epoch(0))}
    for it in pipelines.values():  # warm-up: workers started, first batches made
        timed_chunk(it, step, 3)
    totals = {k: [0.0, 0.0, 0] for k in pipelines}
    chunk_rates = {k: [] for k in pipelines}
    for _ in range(max(1, args.steps // args.chunk)):
        for name, it in pipelines.items():
            wait, total, images = timed_chunk(it, step, args.chunk)
            totals[name][0] += wait
            totals[name][1] += total
            totals[name][2] += images
            chunk_rates[name].append(images / total)

    rows = []
    epoch_images = len(splits.train)
    for name, (wait, total, images) in totals.items():
        rows.append({"pipeline": name, "images_per_s": images / total,
                     "median_chunk_images_per_s": statistics.median(chunk_rates[name]),
                     "data_wait_share": wait / total, "projected_epoch_s": epoch_images / (images / total)})
    base = next(r["images_per_s"] for r in rows if r["pipeline"] == baseline)
    print(f"{args.teacher} → {args.student} ({args.method}), batch {args.batch}, {args.threads} threads, "
          f"{args.steps} steps per pipeline, interleaved in chunks of {args.chunk}")
    print(f"{'pipeline':<50} {'img/s':>8} {'data wait':>10} {'epoch (s)':>10} {'speed-up':>9}")
    for r in rows:
        print(f"{r['pipeline']:<50} {r['images_per_s']:>8.0f} {r['data_wait_share']:>9.1%} "
              f"{r['projected_epoch_s']:>10.0f} {r['images_per_s'] / base:>8.2f}x")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    write_json(args.out, {"args": vars(args), "rows": rows, "cpu": cpu, "cores": os.cpu_count(),
                          "loadavg_at_end": load, "torch": torch.__version__,
                          "date": time.strftime("%Y-%m-%d %H:%M"),
                          "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                text=True, check=False).stdout.strip()})


if __name__ == "__main__":
    main()
