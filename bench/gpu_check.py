"""The prepared device check of the GPU path (issue 18): one command that fits a short GPU lease and
always leaves a report, even a partial one.

Stages, in order, each in its own process with its own time limit (a stage that hangs or runs long
is killed and the next one starts; what it recorded before that is kept):

  env    GPU, driver, torch / CUDA / cuDNN / onnx / onnxruntime versions, CPUs, our commit.   45 s
  data   unpack and decode the CIFAR-10 archive once into the cache the later stages share.   60 s
  tests  `pytest -m cuda tests/cuda`: a bf16 step of every method against fp32, the resident
         loader on the device, torch.compile and its fallback, checkpoint/resume on CUDA.     90 s
  epoch  bench/gpu_epoch.py's measurement, ResNet-32x4 → ResNet-8x4 MIMKD through the real
         trainer: bf16/fp32 × eager/compiled at batch 64 and 512, about 12,800 images per
         variant, steady images/s and the projected 240-epoch time (goal: ≤ 10 min).        180 s
  real   a short real run: the CPU protocol's teacher (recipes/cpu/teacher-resnet20.toml) and
         its MIMKD student (recipes/cpu/conv4_mp.toml), each for the recipe's epochs or as many
         as the time left allows (two short speed probes decide, milestones scaled to match);
         test accuracy, images/s, the CPU protocol's accuracy at the same epochs when
         bench/results/cpu/runs has it, then ONNX export + onnxruntime parity of the student.
         openvino and nncf are blocked from importing: training and ONNX export must not need
         them (the GPU machine has neither).                                     what is left

Budget: --budget seconds in all (default 480: 8 minutes, inside the device tool's 10-minute command
limit, leaving room in a 15-minute lease for the machine's start and a partial rerun with
--stages). The limits above are caps; time a stage does not use goes to the real run. The order
puts the cheap, decisive checks first and, inside the epoch stage, bf16 before fp32.

Outputs, in --out (default $OUT when set, else runs/gpu-check-report), rewritten after every
stage so that a kill still leaves the stages before it:
  gpu_check.json  every stage: status (ok / failed / timeout / skipped), seconds, limit, result
  gpu_check.md    the same as a readable report: the figures for README "On a GPU"
  gpu_check.log   every stage's own output, in order

On a lent GPU (bench/results/gpu/ is where the report is committed):

    # here, once: copy the data archive into runs/gpu_check/ (ignored, so it travels only when
    # carried) and record the commit there (the device gets the working tree, not .git)
    python -m bench.gpu_check --prepare --data CIFAR10_DATA
    # then the device tool's `run` with
    #   command:   PYTHONUNBUFFERED=1 python3 -m bench.gpu_check --data runs/gpu_check/cifar10-jpeg-q75.tar.gz
    #   carry:     ["runs/gpu_check"]
    #   timeout_s: 600
    # and, with time left, a rerun of some stages, e.g. `... --stages real --budget 240`.

On CPU, with tiny sizes and a generated ten-class image archive, in about a minute (the test
suite runs this: tests/bench/test_gpu_check_dry_run.py):

    python -m bench.gpu_check --dry-run --out /tmp/gpu-check

Run it from the repository root. The package need not be installed: `python -m` imports from the working
directory, the stages are started the same way from there, and pytest gets the root on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: the stages run there, as `python -m bench.gpu_check`

STAGES = ("env", "data", "tests", "epoch", "real")
LIMITS = {"env": 45, "data": 60, "tests": 90, "epoch": 180}  # seconds (env: a cold torch + CUDA start); real: the rest
DRY_LIMITS = {"env": 30, "data": 30, "tests": 60, "epoch": 60}
REPORT_RESERVE_S = 5  # kept back from the last stage to write the report
PREPARED = ROOT / "runs" / "gpu_check"  # ignored folder the data archive travels in (`carry`)
GOAL_MIN = 10.0  # issue 7: 240 epochs of ResNet-32x4 → ResNet-8x4 MIMKD in ≤ 10 min on one H100-class GPU
BLOCKED = ("openvino", "nncf", "ncnn", "pnnx", "executorch", "torchao")  # the GPU path needs none of them


# ----------------------------------------------------------------------------------------------
# configuration


def make_config(args, work: Path) -> dict:
    """Everything the stages need, written once to work/config.json."""
    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    data = args.data or (str(make_tiny_archive(work)) if dry else None)
    if data is None:
        raise SystemExit("--data: the CIFAR-10 archive (e.g. runs/gpu_check/cifar10-jpeg-q75.tar.gz) is needed")
    epoch = {"recipe": "recipes/paper/resnet32x4-resnet8x4.toml", "teacher": None, "student": None, "sets": [],
             "max_images": 12_800,
             "specs": [(64, "bf16", "eager"), (64, "bf16", "compile"), (512, "bf16", "eager"),
                       (512, "bf16", "compile"), (64, "fp32", "eager"), (512, "fp32", "eager"),
                       (64, "fp32", "compile"), (512, "fp32", "compile")]}
    real = {"teacher_recipe": "recipes/cpu/teacher-resnet20.toml", "student_recipe": "recipes/cpu/conv4_mp.toml",
            "teacher_sets": [], "student_sets": [], "sets": [], "probe_steps": 60, "export_reserve_s": 45}
    if dry:  # tiny models and batches: the plumbing is under test, not the speed
        small = ["method.nce_k=64", "method.critic_hidden=16"]
        epoch.update(teacher="resnet8", student="conv4", max_images=48, sets=small,
                     specs=[(16, "bf16", "eager"), (16, "fp32", "eager")])
        real.update(teacher_sets=['student.model="resnet8"'], probe_steps=3, export_reserve_s=20,
                    sets=["train.batch_size=16", "train.log_every=1"],
                    student_sets=small)
    return {"dry_run": dry, "device": device, "data": str(Path(data).resolve()), "work": str(work),
            "tests": {"paths": ["tests/cuda"]}, "epoch": epoch, "real": real}


def make_tiny_archive(work: Path, classes: int = 10, train: int = 12, test: int = 4) -> Path:
    """A ten-class image-folder .tar.gz of random 32x32 images, named as CIFAR-10's classes: what the dry run
    reads as "CIFAR-10" (a folder of other classes is refused as CIFAR-10)."""
    import tarfile

    import numpy as np
    from PIL import Image

    from mimkd_edge.data.cifar import CIFAR10_CLASSES

    archive = work / "tiny-cifar10.tar.gz"
    if archive.is_file():
        return archive
    rng = np.random.default_rng(0)
    folder = work / "tiny-cifar10"
    for split, n in (("train", train), ("test", test)):
        for c in range(classes):
            d = folder / split / (CIFAR10_CLASSES[c] if c < len(CIFAR10_CLASSES) else f"class{c}")
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname="tiny-cifar10")
    shutil.rmtree(folder)
    return archive


# ----------------------------------------------------------------------------------------------
# the orchestrator: runs each stage in a child process under its own time limit


def run_stages(args, cfg: dict, out: Path) -> dict:
    work = Path(cfg["work"])
    (work / "config.json").write_text(json.dumps(cfg, indent=2))
    budget = args.budget or (240 if cfg["dry_run"] else 480)
    limits = DRY_LIMITS if cfg["dry_run"] else LIMITS
    wanted = args.stages.split(",") if args.stages else list(STAGES)
    unknown = set(wanted) - set(STAGES)
    if unknown:
        raise SystemExit(f"--stages: unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    started = time.time()
    deadline = started + budget - REPORT_RESERVE_S
    report = {"check": "bench/gpu_check.py", "dry_run": cfg["dry_run"], "budget_s": budget,
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data": cfg["data"], "stages": {}}
    log = out / "gpu_check.log"
    log.write_text("")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
           "MIMKD_CACHE": os.environ.get("MIMKD_CACHE", str(work / "cache"))}
    for name in STAGES:
        if name not in wanted:
            continue
        left = deadline - time.time()
        limit = left if name == "real" else min(limits[name], left)
        if limit < 5:
            report["stages"][name] = {"status": "skipped", "reason": "no time left in the budget"}
            continue
        print(f"[gpu_check] {name}: up to {limit:.0f} s", flush=True)
        report["stages"][name] = run_stage(name, limit, work, env, log)
        s = report["stages"][name]
        print(f"[gpu_check] {name}: {s['status']} in {s['seconds']:.1f} s"
              + (f" — {s['result']['error']}" if s.get("result", {}).get("error") else ""), flush=True)
        report["elapsed_s"] = round(time.time() - started, 1)
        write_report(report, out)
    report["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_report(report, out)
    return report


def run_stage(name: str, limit: float, work: Path, env: dict, log: Path) -> dict:
    """One stage in a child process (own process group, so a timeout kills its children too)."""
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    stage_log = work / f"{name}.log"
    cmd = [sys.executable, "-m", "bench.gpu_check", "--stage", name, "--work", str(work),
           "--deadline", str(time.time() + limit)]
    t0 = time.time()
    with open(stage_log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            status = "ok" if proc.wait(timeout=limit) == 0 else "failed"
        except subprocess.TimeoutExpired:
            status = "timeout"
            for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
    seconds = time.time() - t0
    text = stage_log.read_text(errors="replace")
    with open(log, "a") as f:
        f.write(f"===== {name}: {status}, {seconds:.1f} s (limit {limit:.0f} s) =====\n{text}\n")
    if status != "ok":  # the end of its output, where the device tool's reply shows it
        print("\n".join(text.splitlines()[-15:]), flush=True)
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    return {"status": status, "seconds": round(seconds, 1), "limit_s": round(limit), "returncode": proc.returncode,
            "result": result}


# ----------------------------------------------------------------------------------------------
# the stages (each runs in its own process: `--stage NAME`)


class Recorder:
    """A stage's result dict, saved to disk after every update so that a kill keeps what was done."""

    def __init__(self, path: Path):
        self.path, self.data = path, {}

    def save(self, **updates) -> None:
        self.data.update(updates)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        os.replace(tmp, self.path)


class _Blocked:
    """An import hook that refuses openvino, nncf and the optional edge runtimes (ncnn, pnnx, executorch,
    torchao): the GPU machine has none of them, so nothing on the training or ONNX path may import them (the
    dry run proves it on CPU)."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked by bench/gpu_check.py: the GPU path must not need it")
        return None


def stage_main(name: str, work: Path, deadline: float) -> int:
    cfg = json.loads((work / "config.json").read_text())
    rec = Recorder(work / f"{name}.json")
    sys.meta_path.insert(0, _Blocked())
    try:
        {"env": stage_env, "data": stage_data, "tests": stage_tests, "epoch": stage_epoch,
         "real": stage_real}[name](cfg, rec, deadline)
    except Exception as e:
        traceback.print_exc()
        rec.save(error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500])
        return 1
    return 0


def stage_env(cfg: dict, rec: Recorder, deadline: float) -> None:
    import platform

    import torch

    from mimkd_edge.provenance import git_commit, versions

    commit = git_commit()
    if commit is None and (PREPARED / "commit.txt").is_file():
        commit = (PREPARED / "commit.txt").read_text().strip() + " (from --prepare)"
    info = {"commit": commit, "python": platform.python_version(), "cpus": os.cpu_count(),
            "versions": versions(("torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "numpy", "mimkd-edge",
                                  *BLOCKED)),
            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=round(p.total_memory / 2**30, 1),
                    multiprocessors=p.multi_processor_count, cudnn=torch.backends.cudnn.version(),
                    bf16_supported=torch.cuda.is_bf16_supported())
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20, check=False).stdout.strip()
            info["driver"] = smi.split(",")[0].strip() or None
        except (OSError, subprocess.TimeoutExpired):
            info["driver"] = None
    rec.save(**info)
    # the training and ONNX-export path imports cleanly with openvino/nncf blocked
    import mimkd_edge.engine.trainer  # noqa: F401
    import mimkd_edge.export  # noqa: F401
    rec.save(training_imports_without_openvino=not any(m.split(".")[0] in BLOCKED for m in sys.modules),
             package_from=str(Path(mimkd_edge.__file__).parent))


def stage_data(cfg: dict, rec: Recorder, deadline: float) -> None:
    from mimkd_edge.data import load_splits
    from mimkd_edge.recipe import load_recipe

    t0 = time.perf_counter()
    recipe = load_recipe(ROOT / cfg["real"]["teacher_recipe"], ['data.dataset="cifar10"'])
    splits = load_splits(recipe.data, cfg["data"])
    rec.save(source=splits.source, train=len(splits.train), test=len(splits.test), classes=splits.classes,
             resident=splits.train.resident, seconds=round(time.perf_counter() - t0, 1))


def stage_tests(cfg: dict, rec: Recorder, deadline: float) -> None:
    import re

    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", *cfg["tests"]["paths"], "-o", "addopts=",
           "--import-mode=importlib", "-v", "-rfE", "-p", "no:cacheprovider"]
    pattern = re.compile(r"^(tests/\S+::\S+)\s+(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)")
    outcomes: dict[str, str] = {}
    failures: list[str] = []
    rec.save(command=" ".join(cmd[1:]), outcomes=outcomes)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # the stage's own time limit kills pytest with it (one process group)
        print(line, end="")
        if m := pattern.match(line):
            outcomes[m.group(1)] = m.group(2)
            rec.save(outcomes=outcomes, counts=_counts(outcomes))
        elif line.startswith(("FAILED ", "ERROR ")):
            failures.append(line.strip()[:400])
            rec.save(failures=failures)
        elif re.match(r"^=+ .*(passed|failed|skipped|error).* in [\d.]+s", line):
            rec.save(summary=line.strip("= \n"))
    rec.save(returncode=proc.wait(), counts=_counts(outcomes))
    if proc.returncode not in (0, 5):  # 5: nothing collected/selected
        raise RuntimeError(f"pytest exited with {proc.returncode}: {len(failures)} failure(s)")


def _counts(outcomes: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in outcomes.values():
        counts[v.lower()] = counts.get(v.lower(), 0) + 1
    return counts


def stage_epoch(cfg: dict, rec: Recorder, deadline: float) -> None:
    from bench.gpu_epoch import measure

    e = cfg["epoch"]
    rows: list[dict] = []
    rec.save(recipe=e["recipe"], teacher=e["teacher"] or "recipe's", student=e["student"] or "recipe's",
             max_images_per_variant=e["max_images"], goal_min=GOAL_MIN, rows=rows)
    for row in measure(e["recipe"], [tuple(s) for s in e["specs"]], Path(cfg["work"]) / "epoch", data=cfg["data"],
                       device=cfg["device"], teacher=e["teacher"], student=e["student"], sets=e["sets"],
                       max_images=e["max_images"]):
        rows.append(row)
        print(f"{row['variant']}: {row['steady_images_per_s']:.0f} img/s, 240 epochs ≈ "
              f"{row['projected_240_epochs_min']:.1f} min", flush=True)
        rec.save(rows=rows, best=_best(rows))


def _best(rows: list[dict]) -> dict | None:
    ok = [r for r in rows if r["projected_240_epochs_min"] == r["projected_240_epochs_min"]]  # not NaN
    if not ok:
        return None
    best = min(ok, key=lambda r: r["projected_240_epochs_min"])
    return {"variant": best["variant"], "projected_240_epochs_min": best["projected_240_epochs_min"],
            "times_goal": best["projected_240_epochs_min"] / GOAL_MIN}


def stage_real(cfg: dict, rec: Recorder, deadline: float) -> None:
    from bench.gpu_epoch import random_teacher, run_variant

    from mimkd_edge.engine.trainer import fit
    from mimkd_edge.export import export_run
    from mimkd_edge.recipe import load_recipe
    from mimkd_edge.rundir.summary import EpochRecord

    r, data = cfg["real"], cfg["data"]
    work = Path(cfg["work"]) / "real"
    common = [f"train.device={json.dumps(cfg['device'])}", 'data.dataset="cifar10"', *r["sets"]]
    t_sets = [*common, *r["teacher_sets"]]
    teacher = load_recipe(r["teacher_recipe"], t_sets)
    s_sets = [*common, *r["student_sets"], f"teacher.model={json.dumps(teacher.student.model)}"]
    rec.save(teacher_recipe=r["teacher_recipe"], student_recipe=r["student_recipe"], overrides={
        "teacher": t_sets, "student": s_sets})

    # How many epochs fit: the recipes' own (the CPU protocol's, so the accuracies compare), or fewer.
    probe = [f"train.log_every={max(1, r['probe_steps'] // 10)}", "train.epochs=1", "train.milestones=[1]"]
    rate_t = run_variant(r["teacher_recipe"], [*t_sets, *probe], data, work, "probe-teacher", r["probe_steps"])
    random_file = random_teacher(teacher.student.model, teacher.data.classes, work / "random" / "model.safetensors")
    rate_s = run_variant(r["student_recipe"], [*s_sets, *probe, f"teacher.checkpoint={json.dumps(str(random_file))}"],
                         data, work, "probe-student", r["probe_steps"])
    student = load_recipe(r["student_recipe"], s_sets)
    n = rate_t["train_size"]
    need = n * (teacher.train.epochs / rate_t["steady_images_per_s"]
                + student.train.epochs / rate_s["steady_images_per_s"])
    available = deadline - time.time() - r["export_reserve_s"]
    fraction = 1.0 if need != need else min(1.0, available / (1.25 * need))  # 1.25: evaluation, set-up, warm-up
    plan_t, plan_s = scaled_schedule(teacher, fraction), scaled_schedule(student, fraction)
    rec.save(probe={"teacher_images_per_s": rate_t["steady_images_per_s"],
                    "student_images_per_s": rate_s["steady_images_per_s"],
                    "seconds_for_recipe_epochs": need, "seconds_available": available},
             epochs={"teacher": plan_t[0], "student": plan_s[0]},
             recipe_epochs={"teacher": teacher.train.epochs, "student": student.train.epochs})

    def progress(who: str):
        def on_event(kind: str, info: dict) -> None:
            if kind == "epoch":
                e = EpochRecord.from_dict(info)
                test = float("nan") if e.test_acc is None else e.test_acc
                print(f"{who} epoch {e.epoch}: test {test:.2f} %, {e.images_per_s:.0f} img/s, {e.seconds:.1f} s",
                      flush=True)
            elif kind == "warning":
                print(f"{who} warning: {info['message']}", flush=True)
        return on_event

    teacher_dir, student_dir = work / "teacher", work / "student"
    fit(load_recipe(r["teacher_recipe"], [*t_sets, *plan_t[1]]), teacher_dir, data_dir=data,
        on_event=progress("teacher"))
    rec.save(teacher=run_record(teacher_dir))
    trained = json.dumps(str(teacher_dir / "model.safetensors"))
    fit(load_recipe(r["student_recipe"], [*s_sets, *plan_s[1], f"teacher.checkpoint={trained}"]), student_dir,
        data_dir=data, on_event=progress("student"))
    rec.save(student=run_record(student_dir))

    t0 = time.perf_counter()
    result = export_run(student_dir, onnx=True, openvino=False, data_dir=data, progress=print)
    art = result.manifest.artifacts[0]
    rec.save(export={"exporter": result.manifest.exporter, "opset": result.manifest.opset,
                     "parity": art.parity, "onnxruntime_test_acc": art.test_accuracy,
                     "pytorch_test_acc": result.manifest.pytorch["test_accuracy"],
                     "seconds": round(time.perf_counter() - t0, 1)},
             openvino_or_nncf_imported=sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))


def scaled_schedule(recipe, fraction: float) -> tuple[int, list[str]]:
    """The recipe's epochs times `fraction` (at least one), its LR milestones scaled alike."""
    wanted = recipe.train.epochs
    epochs = max(1, int(wanted * fraction))
    milestones = sorted({max(1, round(m * epochs / wanted)) for m in recipe.train.milestones})
    return epochs, [f"train.epochs={epochs}", f"train.milestones={json.dumps(milestones)}"]


def run_record(run: Path) -> dict:
    """The figures of a finished run, with the CPU protocol's for the same recipe when committed."""
    from mimkd_edge.rundir import read_metrics, read_summary

    summary, epochs = read_summary(run), read_metrics(run)
    rates = [e.images_per_s for e in epochs]
    return {"model": summary.student.model, "method": summary.method, "epochs": summary.epochs,
            "final_test_acc": summary.final_test_acc, "wall_seconds": round(summary.wall_seconds, 1),
            "images_per_s": round(statistics.median(rates[1:] or rates)),  # after the warm-up epoch
            "device": summary.device, "per_epoch_test_acc": [e.test_acc for e in epochs],
            "cpu_protocol": cpu_reference(summary)}


def _setting(s) -> tuple:
    """What makes two runs' accuracies comparable: student, method, epochs, teacher and data set."""
    return s.student.model, s.method, s.epochs, (s.teacher or {}).get("model"), s.data.dataset


def cpu_reference(summary) -> dict | None:
    """Test accuracy of the committed CPU-protocol runs of the same student, method, teacher and epochs."""
    from mimkd_edge.rundir import read_summary

    found = [s for s in (read_summary(path.parent) for path in
                         sorted((ROOT / "bench" / "results" / "cpu" / "runs").glob("*/summary.json")))
             if _setting(s) == _setting(summary) and s.final_test_acc is not None]
    if not found:
        return None
    accs = [s.final_test_acc for s in found]
    return {"runs": len(found), "final_test_acc_mean": statistics.fmean(accs), "final_test_acc": accs,
            "images_per_s_mean": statistics.fmean(s.images_per_s for s in found)}


# ----------------------------------------------------------------------------------------------
# the report


def write_report(report: dict, out: Path) -> None:
    for name, text in (("gpu_check.json", json.dumps(report, indent=2, default=str) + "\n"),
                       ("gpu_check.md", render_markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / name)


def _f(x, fmt: str = ".1f") -> str:
    return "—" if x is None or x != x else format(x, fmt)


def _pair(d: dict | None) -> str:
    return "—" if not d else f"teacher {d['teacher']}, student {d['student']}"


def render_markdown(report: dict) -> str:
    """The report as Markdown: a stage table, then one section per stage that left a result."""
    res = {name: stage.get("result", {}) for name, stage in report["stages"].items()}
    env = res.get("env", {})
    lines = [f"# GPU check{' (dry run, CPU)' if report['dry_run'] else ''}: {env.get('gpu', 'no GPU')}", "",
             f"Started {report['started_at']}; {_f(report.get('elapsed_s'), '.0f')} s of a {report['budget_s']} s "
             f"budget. Commit {env.get('commit', '—')}. Written by `bench/gpu_check.py`.", "",
             "| stage | status | seconds | limit s |", "| --- | --- | --: | --: |"]
    for name, stage in report["stages"].items():
        why = stage.get("result", {}).get("error") or stage.get("reason")
        lines.append(f"| {name} | {stage['status']}{' — ' + why if why else ''} | {_f(stage.get('seconds'))} | "
                     f"{stage.get('limit_s', '—')} |")
    for section, name in ((_md_env, "env"), (_md_data, "data"), (_md_tests, "tests"), (_md_epoch, "epoch"),
                          (_md_real, "real")):
        if res.get(name):
            lines += ["", *section(res[name], report)]
    return "\n".join(lines) + "\n"


def _md_env(env: dict, report: dict) -> list[str]:
    v = env.get("versions", {})
    gpu = "no CUDA device"
    if env.get("gpu"):
        gpu = (f"GPU {env['gpu']} (compute {env['capability']}, {env['gpu_memory_gib']} GiB, "
               f"{env['multiprocessors']} SMs), driver {env.get('driver')}, cuDNN {env.get('cudnn')}")
    return ["## Environment", "",
            f"{gpu}; torch's CUDA {env.get('torch_cuda')}; Python {env.get('python')}, torch {v.get('torch')}, "
            f"torchvision {v.get('torchvision')}, onnx {v.get('onnx')}, onnxscript {v.get('onnxscript')}, "
            f"onnxruntime {v.get('onnxruntime')}; openvino {v.get('openvino')}, nncf {v.get('nncf')}; "
            f"{env.get('cpus')} CPUs. Training and ONNX export import without openvino/nncf and the edge runtimes: "
            f"{env.get('training_imports_without_openvino')}."]


def _md_data(d: dict, report: dict) -> list[str]:
    return [f"Data: {d.get('source')}, {d.get('train')} training and {d.get('test')} test images, decoded and "
            f"cached in {d.get('seconds')} s."]


def _md_tests(t: dict, report: dict) -> list[str]:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(t.get("counts", {}).items())) or "none ran"
    return ["## CUDA tests", "", f"`pytest -m cuda tests/cuda`: {counts}. {t.get('summary', '')}",
            *[f"- {f}" for f in t.get("failures", [])]]


def _md_epoch(e: dict, report: dict) -> list[str]:
    lines = ["## Epoch speed: ResNet-32x4 → ResNet-8x4 MIMKD (bench/gpu_epoch.py)", "",
             f"Teacher {e.get('teacher')}, student {e.get('student')}; about {e.get('max_images_per_variant')} "
             "images per variant, timed between step events after the first (warm-up and compilation left out); "
             "projection: 240 epochs of the training split at that rate.", "",
             "| variant | images/s | ms/step | 240 epochs, min | notes |", "| --- | --: | --: | --: | --- |"]
    for row in e.get("rows", []):
        lines.append(f"| {row['variant']} | {_f(row['steady_images_per_s'], '.0f')} | "
                     f"{_f(row['steady_ms_per_step'], '.2f')} | {_f(row['projected_240_epochs_min'])} | "
                     f"{'; '.join(row['warnings'])} |")
    if best := e.get("best"):
        verdict = "within" if best["times_goal"] <= 1 else f"{best['times_goal']:.1f}× over"
        lines += ["", ("(Dry run: CPU and tiny models, so not the goal's figures.) " if report["dry_run"] else "")
                  + f"Fastest: {best['variant']}, 240 epochs ≈ {best['projected_240_epochs_min']:.1f} min: "
                  f"{verdict} the goal of {GOAL_MIN:.0f} min on one H100-class GPU."]
    return lines


def _md_real(r: dict, report: dict) -> list[str]:
    lines = ["## Short real run on CIFAR-10", "",
             f"`{r.get('teacher_recipe')}`, then `{r.get('student_recipe')}` distilled from it, on the default GPU "
             "path (bf16 autocast, eager, resident data); epochs as the recipes say unless the budget allowed fewer "
             f"(recipes: {_pair(r.get('recipe_epochs'))}; run: {_pair(r.get('epochs'))}; LR milestones scaled "
             "alike).", "",
             "| run | model | method | epochs | test acc % | images/s | wall s | CPU protocol, same epochs |",
             "| --- | --- | --- | --: | --: | --: | --: | --- |"]
    for who in ("teacher", "student"):
        if run := r.get(who):
            cpu = run.get("cpu_protocol")
            ref = "not committed" if not cpu else \
                f"{cpu['final_test_acc_mean']:.2f} % ({cpu['runs']} run(s), {cpu['images_per_s_mean']:.0f} img/s)"
            lines.append(f"| {who} | {run['model']} | {run['method']} | {run['epochs']} | "
                         f"{_f(run['final_test_acc'], '.2f')} | {run['images_per_s']} | {_f(run['wall_seconds'])} | "
                         f"{ref} |")
    if x := r.get("export"):
        p = x["parity"]
        lines += ["", f"ONNX ({x['exporter']}, opset {x['opset']}) + onnxruntime, parity on {p['images']} test images: "
                  f"max |Δ logits| {p['max_abs_diff']:.2e} (batch 1: {p['batch1_max_abs_diff']:.2e}), top-1 "
                  f"agreement {p['top1_agreement']:.1f} %, {'passed' if p['passed'] else 'FAILED'} "
                  f"({p['criterion']}); test accuracy onnxruntime {x['onnxruntime_test_acc']:.2f} % vs PyTorch "
                  f"{x['pytorch_test_acc']:.2f} %; {x['seconds']} s. openvino/nncf imported: "
                  f"{r.get('openvino_or_nncf_imported') or 'none'}."]
    return lines


# ----------------------------------------------------------------------------------------------


def prepare(data: str | None) -> None:
    """Here, before the device call: the data archive and the commit into the carried folder."""
    data = data or os.environ.get("MIMKD_DATA")
    if not data:
        raise SystemExit("--data: give the CIFAR-10 archive to carry (or set MIMKD_DATA)")
    source = Path(data)
    if not source.is_file():
        raise SystemExit(f"--data: no such archive: {source}")
    PREPARED.mkdir(parents=True, exist_ok=True)
    (PREPARED / source.name).unlink(missing_ok=True)  # a read-only earlier copy
    shutil.copyfile(source, PREPARED / source.name)
    from mimkd_edge.provenance import git_commit

    (PREPARED / "commit.txt").write_text(f"{git_commit()}\n")
    rel = (PREPARED / source.name).relative_to(ROOT)
    print(f"prepared {PREPARED.relative_to(ROOT)}/ ({source.name}, commit.txt). Device tool `run`:\n"
          f"  command: PYTHONUNBUFFERED=1 python3 -m bench.gpu_check --data {rel}\n"
          f"  carry:   [\"{PREPARED.relative_to(ROOT)}\"]\n  timeout_s: 600")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="the CIFAR-10 image-folder archive (a tiny generated one with --dry-run)")
    ap.add_argument("--out", help="report folder [$OUT, else runs/gpu-check-report]")
    ap.add_argument("--budget", type=float, help="seconds for all stages [480; 240 with --dry-run]")
    ap.add_argument("--stages", help=f"comma-separated subset of {','.join(STAGES)} [all]")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny models and data: checks the script itself")
    ap.add_argument("--work", help="scratch folder for runs and caches [a new temporary folder]")
    ap.add_argument("--prepare", action="store_true", help="copy --data and the commit into runs/gpu_check/, then stop")
    ap.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage in this process
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        return stage_main(args.stage, Path(args.work), args.deadline)
    if args.prepare:
        prepare(args.data)
        return 0
    out = Path(args.out or os.environ.get("OUT") or ROOT / "runs" / "gpu-check-report")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    report = run_stages(args, make_config(args, work), out)
    print(f"[gpu_check] report: {out / 'gpu_check.md'}", flush=True)
    return 0 if all(s["status"] == "ok" for s in report["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
