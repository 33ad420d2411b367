"""Time one optimisation step of CE, KD, CRD and MIMKD on CPU, interleaved, and their extra memory.

One step = teacher forward (eval, no_grad; skipped for CE alone) + student forward_features +
method forward + backward + SGD step over the student's and the method's parameters. Methods take
turns (round-robin) for several rounds so that background load hits them alike; the table gives
medians and ratios against KD, for wall-clock time and for the process's CPU time (user + system,
both threads: less sensitive than wall time to other jobs on a shared machine), and the FLOPs of
matmuls and convolutions in one step (counted by torch's FlopCounterMode: load-independent, but
blind to element-wise work). "Extra memory" is the bytes of the method module's parameters and
buffers (critics, embeddings, memory banks), i.e. what a method adds to a checkpoint.

A method is `name` or `name:key=value,key=value` with TOML values, bare words read as strings
(e.g. `mimkd:critic_hidden=128,feature_critic=project`); separate methods with ';' or ','.
A suffix `@compile` runs the method's forward through `torch.compile`, `@compile-head` only the
convolve critics' layers after the first (issue 17's fusion lever: the ReLUs, the 512 → 1 layer and
their backward are the element-wise work on hidden-wide tensors); compilation happens in the
warm-up rounds, so give at least one.

    python -m bench.train_step --rounds 5
    python -m bench.train_step --pairs resnet56:conv4_mp --methods kd,mimkd,mimkd:critic_hidden=128
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mimkd_edge.engine.step import TrainStep, method_context
from mimkd_edge.methods import create_method, method_class
from mimkd_edge.methods.critics import ConvolveCritic
from mimkd_edge.methods.memory import TeacherMemory
from mimkd_edge.models import create_model
from mimkd_edge.recipe import parse_override
from mimkd_edge.schema import build

DEFAULT_PAIRS = "resnet32x4:resnet8x4,resnet56:conv4_mp"
DEFAULT_METHODS = "none,kd,crd,crd:shared=true,mimkd,mimkd:critic_hidden=128"
CLASSES = 100  # CIFAR-100's heads, as the paper's pairs have them
ROOT = Path(__file__).resolve().parents[1]  # where `python -m bench.train_step` runs (its peak-memory children too)


def parse_method(spec: str) -> tuple[str, dict]:
    """`mimkd:critic_hidden=128,feature_critic=project` → ("mimkd", {"critic_hidden": 128, ...}): each option
    read as a recipe's `--set` reads its value (TOML, a bare word as a string)."""
    name, _, rest = spec.partition(":")
    table = {}
    for item in filter(None, rest.split(",")):
        path, value = parse_override(item)
        table[".".join(path)] = value
    return name.strip(), table


COMPILE_SUFFIXES = ("@compile", "@compile-head")


def split_compile_suffix(spec: str) -> tuple[str, str | None]:
    """(the method spec, its `@compile…` suffix or None)."""
    for suffix in COMPILE_SUFFIXES:
        if spec.endswith(suffix):
            return spec[:-len(suffix)], suffix
    return spec, None


def compile_method(method: torch.nn.Module, how: str) -> None:
    """torch.compile the method's forward (`@compile`) or each convolve critic's head (`@compile-head`)."""
    if how == "@compile":
        method.forward = torch.compile(method.forward, dynamic=False)
        return
    for m in method.modules():
        if isinstance(m, ConvolveCritic):
            m.head = torch.compile(m.head, dynamic=False)


def shell(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, check=False, text=True, timeout=10).stdout.strip()
    except Exception as e:  # noqa: BLE001 - informational only
        return f"unavailable ({e})"


def module_bytes(m: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(m.parameters()) + list(m.buffers()))


def fill_memories(method: torch.nn.Module) -> None:
    """Fill MIMKD's teacher memory as after the first epoch: a fresh bench takes a few steps, and a
    memory still filling would offer fewer than K negatives — a cheaper step than a real one.
    (CRD's bank starts full of random rows, as in CRD.)"""
    for m in method.modules():
        if isinstance(m, TeacherMemory):
            rows = m.rows.shape[0]
            m.update(torch.randn(rows, m.dim), torch.arange(rows) if m.kind == "bank" else None)


class Runner:
    """One method's student copy, method module and optimiser for a teacher → student pair."""

    def __init__(self, spec, teacher, student, ctx, channels_last):
        base, how = split_compile_suffix(spec)
        name, table = parse_method(base)
        self.spec, self.name = spec, name
        self.method = create_method(name, build(method_class(name).Options, table), ctx)
        if how:
            compile_method(self.method, how)
        self.student = copy.deepcopy(student).train()
        if channels_last:
            self.student = self.student.to(memory_format=torch.channels_last)
        params = list(self.student.parameters()) + list(self.method.parameters())
        self.train_step = TrainStep(self.student, teacher if self.method.needs_teacher else None, self.method,
                                    torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4))
        self.extra_bytes = module_bytes(self.method)
        fill_memories(self.method)
        self.times: list[float] = []
        self.cpu_times: list[float] = []

    def step(self, x, y, index) -> tuple[float, float]:
        """(wall seconds, process CPU seconds) of one step."""
        cpu0, start = time.process_time(), time.perf_counter()
        self.train_step(x, y, index)
        return time.perf_counter() - start, time.process_time() - cpu0

    def count_flops(self, x, y, index) -> int:
        """Matmul and convolution FLOPs of one whole step (forward and backward), load-independent."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            self.step(x, y, index)
        return counter.get_total_flops()


def make_runners(pair: str, specs: list[str], args) -> list[Runner]:
    t_name, s_name = pair.split(":")
    torch.manual_seed(0)
    teacher = create_model(t_name, num_classes=CLASSES).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = create_model(s_name, num_classes=CLASSES)
    ctx = method_context(student, teacher, num_classes=CLASSES, num_samples=args.num_samples)  # at the student's size
    if args.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return [Runner(spec, teacher, student, ctx, args.channels_last) for spec in specs]


def make_batch(g: torch.Generator, args, size: int = 32):
    """A batch of random `size`×`size` images (the CIFAR students' own size) with labels and sample indices."""
    x = torch.randn(args.batch, 3, size, size, generator=g)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, CLASSES, (args.batch,), generator=g)
    return x, y, torch.randperm(args.num_samples, generator=g)[:args.batch]


def peak_step_mb(pair: str, spec: str, args) -> float:
    """Peak resident memory a step adds (MB): two steps of one method in a fresh process, the
    growth of its peak RSS over the RSS once models, method and memories are built (Linux /proc).
    In-process figures would mix the methods; this one is activations, gradients, optimiser state
    and allocator slack."""
    cmd = [sys.executable, "-m", "bench.train_step", "--peak-of", spec, "--pairs", pair, "--batch", str(args.batch),
           "--threads", str(args.threads), "--num-samples", str(args.num_samples)]
    if not args.channels_last:
        cmd.append("--no-channels-last")
    done = subprocess.run(cmd, capture_output=True, check=False, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"peak memory of {spec} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _peak_of(spec: str, args) -> None:
    run = make_runners(args.pairs, [spec], args)[0]
    batch = make_batch(torch.Generator().manual_seed(0), args, run.student.input_size)
    if split_compile_suffix(spec)[1]:  # compile first: its memory is not a step's
        run.step(*batch)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (the peak RSS) to the current RSS
    before = _proc_status_kb("VmRSS")
    for _ in range(2):
        run.step(*batch)
    print((_proc_status_kb("VmHWM") - before) / 1024)


def _proc_status_kb(key: str) -> int:
    """VmRSS (now) or VmHWM (peak since exec or the last clear_refs) of this process, in kB. Not
    getrusage's ru_maxrss: that keeps the parent's peak across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def bench_pair(pair: str, specs: list[str], args) -> list[dict]:
    runners = make_runners(pair, specs, args)
    g = torch.Generator().manual_seed(0)
    for r in range(args.warmup + args.rounds):
        x, y, index = make_batch(g, args, runners[0].student.input_size)
        order = runners if r % 2 == 0 else runners[::-1]  # alternate the order: no fixed neighbour
        for run in order:
            dt, cpu = run.step(x, y, index)
            if r >= args.warmup:
                run.times.append(dt)
                run.cpu_times.append(cpu)
        print(f"  {pair} round {r + 1}/{args.warmup + args.rounds}"
              + ("" if r >= args.warmup else " (warm-up)"), file=sys.stderr, flush=True)
    flops = {run.spec: run.count_flops(x, y, index) for run in runners}  # one more step each, untimed
    kd = next((run for run in runners if run.spec == "kd"), None)
    nan = float("nan")
    kd_med, kd_min, kd_cpu = ((statistics.median(kd.times), min(kd.times), statistics.median(kd.cpu_times))
                              if kd else (nan, nan, nan))
    peaks = {run.spec: peak_step_mb(pair, run.spec, args) for run in runners} if args.peak_memory else {}
    rows = []
    for run in runners:
        med, low, cpu = statistics.median(run.times), min(run.times), statistics.median(run.cpu_times)
        rows.append({"pair": pair, "method": run.spec, "median_ms": med * 1e3, "min_ms": low * 1e3,
                     "cpu_median_ms": cpu * 1e3, "vs_kd": med / kd_med, "min_vs_kd": low / kd_min,
                     "cpu_vs_kd": cpu / kd_cpu, "extra_bytes": run.extra_bytes,
                     "times_ms": [t * 1e3 for t in run.times], "cpu_times_ms": [t * 1e3 for t in run.cpu_times],
                     "peak_step_mb": peaks.get(run.spec, nan),
                     "gflop": flops[run.spec] / 1e9, "gflop_vs_kd": flops[run.spec] / flops[kd.spec] if kd else nan})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=DEFAULT_PAIRS, help="teacher:student,... (default: %(default)s)")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help="method specs, ';'-separated if they hold commas, "
                    "else ','-separated (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--num-samples", type=int, default=50000, help="training-set size (memory banks)")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    ap.add_argument("--json", default="bench/results/train_step.json")
    ap.add_argument("--no-peak-memory", dest="peak_memory", action="store_false",
                    help="skip the per-method peak-memory processes")
    ap.add_argument("--peak-of", help=argparse.SUPPRESS)  # internal: one method's peak step memory
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.peak_of:
        _peak_of(args.peak_of, args)
        return 0
    if ";" in args.methods:
        specs = [s.strip() for s in args.methods.split(";") if s.strip()]
    else:
        specs = _split_specs(args.methods)

    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load_before = shell("uptime")
    rows = []
    for pair in args.pairs.split(","):
        rows += bench_pair(pair.strip(), specs, args)
    result = {
        "command": shlex.join(["python", "-m", "bench.train_step", *(argv if argv is not None else sys.argv[1:])]),
        "date": started,
        "machine": shell("lscpu | grep 'Model name'").partition(":")[2].strip() or platform.processor(),
        "threads": args.threads, "batch": args.batch, "channels_last": args.channels_last,
        "torch": torch.__version__, "uptime_before": load_before, "uptime_after": shell("uptime"),
        "rounds": args.rounds, "warmup": args.warmup, "rows": rows,
    }
    print(f"\n{result['machine']}; torch {torch.__version__}; {args.threads} threads; batch {args.batch}; "
          f"channels_last={args.channels_last}; {args.rounds} rounds (+{args.warmup} warm-up), medians")
    print(f"load before: {load_before}\nload after:  {result['uptime_after']}\n")
    print(table(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"\nwrote {args.json}")
    return 0


def table(rows: list[dict]) -> str:
    """Markdown: wall-clock median and min, process CPU time median, each also as a ratio to KD."""
    out = ["| pair | method | wall median ms | × KD | wall min ms | × KD | CPU median ms | × KD | GFLOP | × KD "
           "| extra MB | peak step MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['pair']} | {r['method']} | {r['median_ms']:.0f} | {r['vs_kd']:.2f} | {r['min_ms']:.0f} "
                   f"| {r['min_vs_kd']:.2f} | {r['cpu_median_ms']:.0f} | {r['cpu_vs_kd']:.2f} "
                   f"| {r['gflop']:.1f} | {r['gflop_vs_kd']:.2f} | {r['extra_bytes'] / 2**20:.1f} "
                   f"| {r.get('peak_step_mb', float('nan')):.0f} |")
    return "\n".join(out)


def _split_specs(text: str) -> list[str]:
    """Split on commas that start a new method (a comma followed by a name without '=')."""
    specs: list[str] = []
    for raw in text.split(","):
        part = raw.strip()
        if specs and "=" in part and ":" not in part:
            specs[-1] += "," + part
        elif part:
            specs.append(part)
    return specs


if __name__ == "__main__":
    sys.exit(main())
