"""The training loop shared by `train` (method "none") and `distill` (every other method).

One loop for everything: each step is engine/step.py's `TrainStep` (the teacher, if any, under no_grad
in eval mode, the student's `Features`, the method's weighted loss terms, SGD over the student and the
method's own parameters together); the method is built for the shapes `method_context` reads. This module
keeps the loop: the epochs, their records and evaluations, the checkpoint after each (rundir/checkpoint.py),
the summary at the end. Progress goes out through a callback, so this module never prints; the CLI renders it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..atomic import remove_stale_temporaries, write_text
from ..data import Loader, Splits, load_splits, make_loader, resolve_recipe
from ..errors import DivergedError, UserError, one_line
from ..methods.memory import seed_draws
from ..methods.registry import DistillMethod, create_method, method_class
from ..models.cost import count_macs, count_params
from ..models.features import FeatureModel
from ..models.registry import create_model
from ..provenance import cpu_name, data_fingerprint, git_commit, sha256_file, versions
from ..recipe import Recipe, dump_recipe
from ..rundir import RunDir, RunSummary, owned, read_summary, weights_path
from ..rundir.checkpoint import Checkpoint, load_model_weights, save_checkpoint, save_weights
from ..rundir.finite import require_finite
from ..rundir.summary import DataInfo, EpochRecord, StudentInfo, write_metrics, write_summary
from .distributed import Distributed, all_gather_cat, average_gradients, init_distributed, is_main_process, \
    rank_seed, resolve_device
from .resume import Resumed, resume_run
from .schedule import make_scheduler
from .step import GeometryError, TrainStep, method_context, teacher_in_bf16, teacher_precision_warning
from .tensorboard_log import open_tensorboard

Event = Callable[[str, dict[str, Any]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Training:
    """Everything one run is made of, built from a recipe; `step` is its training step."""

    recipe: Recipe
    device: torch.device
    splits: Splits
    student: FeatureModel
    teacher: FeatureModel | None
    method: DistillMethod
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_loader: Loader
    test_loader: Loader
    teacher_info: dict = field(default_factory=dict)
    ddp: Distributed = Distributed()
    step: TrainStep | None = None
    val_loader: Loader | None = None  # data.val_split's images, when held out

    def autocast(self):
        """bf16 autocast on CUDA (the recipe's precision "auto"/"bf16"); fp32 elsewhere."""
        p = self.recipe.train.precision
        if self.device.type == "cuda" and p in ("auto", "bf16"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        if self.device.type == "cpu" and p == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()


class _StudentFeatures(nn.Module):
    """`forward` = the student's `forward_features`, so DDP and torch.compile see the step's forward."""

    def __init__(self, student: FeatureModel):
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        f = self.student.forward_features(x)
        return f.logits, f.maps, f.vector


def build_training(recipe: Recipe, data_dir: str | None = None) -> Training:
    ddp = init_distributed(recipe.train.device)
    seed_everything(recipe.seed)
    device = resolve_device(recipe.train.device)
    if recipe.train.batch_size % ddp.world_size:
        raise UserError(f"train.batch_size: the global batch ({recipe.train.batch_size}) must divide evenly "
                        f"over {ddp.world_size} processes")
    splits = load_splits(recipe.data, data_dir)
    recipe = resolve_recipe(recipe, splits)  # an image folder's class count and statistics, written into the run
    classes = recipe.data.classes
    memory_format = torch.channels_last if recipe.train.channels_last else torch.contiguous_format
    student = create_model(recipe.student.model, num_classes=classes, in_chans=recipe.data.channels)
    teacher, teacher_info = None, {}
    if method_class(recipe.method.name).needs_teacher:
        teacher, teacher_info = load_teacher(recipe)
    t = recipe.train
    common = dict(mean=splits.mean, std=splits.std, device=device, channels_last=t.channels_last,
                  workers=recipe.data.workers)
    train_loader = make_loader(splits.train, t.batch_size, train=True, augment=recipe.data.augment, seed=recipe.seed,
                               rank=ddp.rank, world_size=ddp.world_size, cutout=recipe.data.cutout,
                               padding=recipe.data.crop_padding, flip=recipe.data.flip, **common)
    test_loader = make_loader(splits.test, max(t.batch_size, 256), train=False, **common)
    val_loader = make_loader(splits.val, max(t.batch_size, 256), train=False, **common) if splits.val else None
    try:
        ctx = method_context(student, teacher, num_classes=classes, num_samples=len(splits.train),
                             input_size=recipe.data.image_size, total_steps=t.epochs * len(train_loader))
    except GeometryError as e:
        d = recipe.data
        raise UserError(f"{e.role}.model: {getattr(recipe, e.role).model} cannot take "
                        f"{d.channels}×{d.image_size}×{d.image_size} images ({one_line(e.error)}); "
                        "choose another model or data.image_size") from None
    try:
        method = create_method(recipe.method.name, recipe.method.options, ctx)
    except ValueError as e:  # e.g. no pair of equal-sized maps for the feature term
        raise UserError(f"method: {e}") from None
    student.to(device, memory_format=memory_format)
    method.to(device)
    if teacher is not None:
        teacher.to(device, memory_format=memory_format).eval().requires_grad_(False)
    params = [p for p in [*student.parameters(), *method.parameters()] if p.requires_grad]
    fused = {"fused": True} if device.type == "cuda" else {"foreach": True}
    optimizer = torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay, **fused)
    scheduler = make_scheduler(optimizer, t, len(train_loader))
    module: nn.Module = _StudentFeatures(student)
    if ddp.world_size > 1:
        # Only the student is wrapped: the method's parameters are averaged by hand after backward,
        # so DDP does not broadcast its memory bank (tens of MB) at every step.
        module = nn.parallel.DistributedDataParallel(module,
                                                     device_ids=[device.index] if device.type == "cuda" else None)
        if hasattr(method, "gather_fn"):  # memory banks get every rank's rows, so all replicas agree
            method.gather_fn = all_gather_cat
    if t.compile:
        module = torch.compile(module)
    s = Training(recipe, device, splits, student, teacher, method, optimizer, scheduler, train_loader, test_loader,
                 teacher_info, ddp, None, val_loader)
    s.step = TrainStep(student, teacher, method, optimizer, teacher_bf16=teacher_in_bf16(t.teacher_precision, device),
                       student_module=module, autocast=s.autocast,
                       reduce_gradients=average_gradients if ddp.world_size > 1 else None)
    return s


def load_teacher(recipe: Recipe) -> tuple[FeatureModel, dict]:
    """The frozen teacher from a finished run's weights; a missing file names the command that makes it."""
    cfg = recipe.teacher
    assert cfg is not None
    path = weights_path(cfg.checkpoint)
    if not path.is_file():
        maker = cfg.recipe or f"recipes/teachers/{cfg.model}.toml"
        raise UserError(f"teacher.checkpoint: no such file: {path}; train the teacher first: "
                        f"mimkd-edge train {maker} --out {path.parent} (or import a published one: "
                        f"mimkd-edge teacher import FILE --model {cfg.model} --out {path.parent})")
    teacher = create_model(cfg.model, num_classes=recipe.data.classes, in_chans=recipe.data.channels)
    load_model_weights(teacher, path, f"teacher model {cfg.model} with {recipe.data.classes} classes")
    require_finite(teacher.state_dict(), path)  # a NaN teacher would surface epochs later as a diverged loss
    info: dict[str, Any] = {"model": cfg.model, "checkpoint": str(path), "sha256": sha256_file(path),
                            "recipe": cfg.recipe}
    if RunDir(path.parent).summary.is_file():  # a teacher trained by this tool: say how good it is
        info["test_acc"] = read_summary(path.parent).final_test_acc
    return teacher, info


@torch.no_grad()
def evaluate(model: FeatureModel, loader: Loader) -> tuple[float, float]:
    """Top-1 accuracy (%) and mean cross-entropy on a whole split."""
    was_training = model.training
    model.eval()
    correct, loss_sum, n = 0, 0.0, 0
    for x, y, _ in loader.epoch(0):
        logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    return 100.0 * correct / n, loss_sum / n


def fit(recipe: Recipe, out_dir: str | Path, *, resume: bool = False, data_dir: str | None = None,
        on_event: Event | None = None) -> RunSummary:
    """Train `recipe` into `out_dir`; returns the run summary. Resumable; never overwrites a run unasked;
    one process per run directory (rundir.owned)."""
    out = Path(out_dir)
    ckpt_path = RunDir(out).checkpoint
    if ckpt_path.exists() and not resume:
        raise UserError(f"{out}: already holds a run; pass --resume to continue it, or choose another --out")
    if not is_main_process():
        return _fit(recipe, out, resume, data_dir, on_event)
    with owned(out):
        remove_stale_temporaries(out)  # a killed run's half-written checkpoint; the real one is untouched
        return _fit(recipe, out, resume, data_dir, on_event)


def _fit(recipe: Recipe, out: Path, resume: bool, data_dir: str | None, on_event: Event | None) -> RunSummary:
    run = RunDir(out)
    s = build_training(recipe, data_dir)
    recipe = s.recipe  # resolved: what the data says (an image folder's classes, statistics) filled in
    main = s.ddp.is_main
    emit = (on_event or (lambda kind, info: None)) if main else (lambda kind, info: None)
    done = Resumed()
    if resume and run.checkpoint.exists():
        done = resume_run(s, out, lambda message: emit("warning", {"message": message}))
    done.sessions.append(_session(s, done.start_epoch))
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(run.recipe, dump_recipe(recipe))

    tensorboard = open_tensorboard(out, done.start_epoch) if main else None
    try:
        return _train(s, out, done, _fan_out(tensorboard, emit))
    finally:
        if tensorboard is not None:
            tensorboard.close()


def _fan_out(*consumers: Event | None) -> Event:
    """One event callback handing every event to each consumer given, in order: TensorBoard first, so an
    exception from the caller's callback (a stop after an epoch) comes after that epoch is logged."""
    live = [c for c in consumers if c is not None]

    def emit(kind: str, info: dict[str, Any]) -> None:
        for consumer in live:
            consumer(kind, info)

    return emit


def _train(s: Training, out: Path, done: Resumed, emit: Event) -> RunSummary:
    """The epochs from `done.start_epoch` on, each checkpointed; then the weights and the summary."""
    run, recipe, main = RunDir(out), s.recipe, s.ddp.is_main
    ckpt_path = run.checkpoint
    t = recipe.train
    steps = len(s.train_loader)
    start_epoch, history = done.start_epoch, done.history
    s.step.warn = lambda message: emit("warning", {"message": message})
    for note in s.splits.notes:  # conversions made while reading the data, said once
        emit("warning", {"message": f"data: {note}"})
    slow_teacher = teacher_precision_warning(t.teacher_precision, s.device) if s.teacher is not None else None
    if slow_teacher:
        emit("warning", {"message": slow_teacher})
    emit("start", {"epochs": t.epochs, "start_epoch": start_epoch, "steps": steps, "device": str(s.device),
                   "out": str(out), "train_size": len(s.splits.train), "test_size": len(s.splits.test),
                   "val_size": len(s.splits.val) if s.splits.val else 0,
                   "data": s.splits.source, "data_origin": s.splits.origin})
    started = time.perf_counter()
    saved = start_epoch if ckpt_path.exists() and start_epoch else None  # epochs in the last good checkpoint
    for epoch in range(start_epoch, t.epochs):
        try:
            record = _train_epoch(s, epoch, emit)
            _require_finite_state(s, epoch)
        except DivergedError as e:
            raise DivergedError(f"{e}; stopped. {_last_good(ckpt_path, saved)}; resume it with --resume and a lower "
                                "train.lr (--set train.lr=...), or check the data") from None
        if (epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs:
            record = dataclasses.replace(record, **_evaluate_splits(s))
        history.append(record)
        if main:
            save_checkpoint(ckpt_path, Checkpoint.capture(
                epoch, model=s.student, method=s.method, optimizer=s.optimizer, scheduler=s.scheduler,
                history=history, wall_seconds=done.wall_seconds + time.perf_counter() - started,
                recipe=dump_recipe(recipe), recipe_changes=done.changes, sessions=done.sessions))
            write_metrics(out, history)
        saved = epoch + 1
        emit("epoch", record.to_dict())

    wall = done.wall_seconds + time.perf_counter() - started
    summary = _summary(s, history, wall, done.changes, done.sessions)
    if main:
        save_weights(run.weights, s.student.state_dict(), metadata={"model": recipe.student.model})
        write_summary(out, summary)
    if s.ddp.world_size > 1:
        dist.barrier()
    emit("end", summary.to_dict())
    return summary


def _evaluate_splits(s: Training) -> dict[str, float]:
    """Accuracy and loss on the validation split (when held out) and the test split, as EpochRecord fields."""
    val = evaluate(s.student, s.val_loader) if s.val_loader is not None else (None, None)
    test = evaluate(s.student, s.test_loader)
    return {"val_acc": val[0], "val_loss": val[1], "test_acc": test[0], "test_loss": test[1]}


def _session(s: Training, start_epoch: int) -> dict:
    """Who trains the epochs from `start_epoch` on: the commit, the CPU and the data, recorded when a run
    starts and again at every resume, so a run whose epochs crossed commits or CPUs says so."""
    return {"start_epoch": start_epoch, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": git_commit(), "cpu": cpu_name(), "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else "cpu",
            "data": data_fingerprint(s.splits.source)}


def _last_good(ckpt_path: Path, saved: int | None) -> str:
    if saved is None:
        return f"No checkpoint was written ({ckpt_path} does not exist): it diverged before its first one"
    return f"The last good checkpoint {ckpt_path} (end of epoch {saved}, every tensor finite) is intact"


def _require_finite_state(s: Training, epoch: int) -> None:
    """A finite loss does not prove finite weights: the step after the last checked loss can overflow
    them, and BN statistics can overflow with finite losses. Nothing non-finite is ever checkpointed."""
    named = [(f"{owner}.{k}", v) for owner, module in (("model", s.student), ("method", s.method))
             for k, v in module.state_dict().items()]
    named += [(f"optimizer momentum {i}", st.get("momentum_buffer")) for i, st in enumerate(s.optimizer.state.values())]
    named = [(k, v) for k, v in named if v is not None and v.is_floating_point()]
    finite = torch.stack([torch.isfinite(v).all() for _, v in named]).tolist() if named else []  # one device read
    bad = [k for (k, _), ok in zip(named, finite, strict=True) if not ok]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise DivergedError(f"after epoch {epoch + 1} the weights hold non-finite values ({', '.join(bad[:3])}{more}) "
                            "although every loss was finite")


def _train_epoch(s: Training, epoch: int, emit: Event) -> EpochRecord:
    s.student.train()
    s.method.train()
    if s.ddp.world_size > 1:  # every rank draws its own negatives from the (shared) memory
        seed_draws(s.method, rank_seed(s.recipe.seed, epoch, s.ddp.rank))
    check_every = 1 if s.device.type == "cpu" else s.recipe.train.log_every
    sums: dict[str, torch.Tensor] = {}
    correct = torch.zeros((), device=s.device)
    seen, started = 0, time.perf_counter()
    lr = s.optimizer.param_groups[0]["lr"]
    last = len(s.train_loader)
    for step, (x, y, idx) in enumerate(s.train_loader.epoch(epoch)):
        result = s.step(x, y, idx)
        loss = result.loss
        if s.recipe.train.schedule == "cosine":
            s.scheduler.step()

        with torch.no_grad():
            for k, v in {"loss": loss, **result.output.losses, **result.output.estimates}.items():
                sums[k] = sums.get(k, 0) + v.detach().float() * len(y)
            correct += (result.student.logits.argmax(1) == y).sum()
        seen += len(y)
        if (step + 1) % check_every == 0 or step + 1 == last:
            _check_finite(loss, s, epoch, step)
        if (step + 1) % s.recipe.train.log_every == 0 or step + 1 == last:
            totals, n, right = _reduce(s, sums, seen, correct)
            emit("step", {"epoch": epoch, "step": step + 1, "steps": last, **{k: v / n for k, v in totals.items()},
                          "train_acc": 100.0 * right / n, "images_per_s": n / (time.perf_counter() - started)})
    if s.recipe.train.schedule == "step":
        s.scheduler.step()
    seconds = time.perf_counter() - started
    totals, n, right = _reduce(s, sums, seen, correct)
    return EpochRecord(epoch=epoch + 1, lr=lr, steps=last, terms={k: v / n for k, v in totals.items()},
                       train_acc=100.0 * right / n, seconds=seconds, images_per_s=n / seconds)


def _reduce(s: Training, sums: dict[str, torch.Tensor], seen: int, correct: torch.Tensor) -> tuple[dict, int, float]:
    """Sums over every rank (one all-reduce): (term sums, images, correct)."""
    keys = sorted(sums)
    flat = torch.stack([sums[k] for k in keys] + [torch.tensor(float(seen), device=s.device), correct.float()])
    if s.ddp.world_size > 1:
        dist.all_reduce(flat)
    values = flat.tolist()
    return dict(zip(keys, values[:-2], strict=True)), int(values[-2]), values[-1]


def _check_finite(loss: torch.Tensor, s: Training, epoch: int, step: int) -> None:
    value = loss.item()
    if not math.isfinite(value):
        raise DivergedError(f"loss became {value} at epoch {epoch + 1}, step {step + 1}")


def _summary(s: Training, history: list[EpochRecord], wall: float, changes: list[dict],
             sessions: list[dict]) -> RunSummary:
    r, splits = s.recipe, s.splits
    evaluated = [h for h in history if h.evaluated]
    best = max(evaluated, key=lambda h: h.test_acc) if evaluated else None
    size = r.data.image_size
    return RunSummary(
        name=r.name, method=r.method.name, seed=r.seed,
        student=StudentInfo(r.student.model, count_params(s.student), count_macs(s.student, size)),
        teacher=s.teacher_info or None,
        data=DataInfo(dataset=r.data.dataset, source=splits.source, classes=list(splits.classes),
                      train_size=len(splits.train), test_size=len(splits.test), image_size=size,
                      mean=list(splits.mean), std=list(splits.std),
                      path={split: "resident" if data.resident else "streamed"
                            for split, data in (("train", splits.train), ("test", splits.test))}),
        epochs=r.train.epochs,
        final_test_acc=history[-1].test_acc,
        best_test_acc=best.test_acc if best else None,
        best_epoch=best.epoch if best else None,
        final_train_acc=history[-1].train_acc,
        wall_seconds=wall,
        images_per_s=sum(h.images_per_s for h in history) / len(history),
        device=torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else "cpu", cpu=cpu_name(),
        versions=versions(), git_commit=git_commit(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        recipe_changes=changes, sessions=sessions,
        final_val_acc=history[-1].val_acc, val_size=len(splits.val) if splits.val else 0)
