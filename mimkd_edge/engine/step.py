"""The training step and the method's set-up: the one copy, which the trainer runs and the bench scripts call.

    ctx = method_context(student, teacher, num_classes=10, num_samples=50_000, input_size=32)
    method = create_method("mimkd", options, ctx)
    step = TrainStep(student, teacher, method, optimizer)
    result = step(x, y, index)             # teacher forward (no_grad), student forward, method, SGD step
    result.output.losses, result.loss     # the weighted terms and their sum

A step is: the frozen teacher's features under no_grad (in bf16 when asked), the student's features, the
method's weighted loss terms, then zero_grad, backward, the gradients the caller reduces (DDP) and the
optimiser's step. `forward` is the first half alone and `update` the second, for a study that needs
the loss without the step or steps only some parameters; neither is written again elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from ..cpuinfo import torch_native_bf16
from ..methods.registry import DistillMethod, MethodContext, MethodOutput
from ..models.features import FeatureModel, Features, map_shapes


class GeometryError(ValueError):
    """A model cannot take images of the context's size (`role`: "student" or "teacher"; `error`: torch's)."""

    def __init__(self, role: str, error: Exception):
        super().__init__(f"{role}: {error}")
        self.role, self.error = role, error


def method_context(student: FeatureModel, teacher: FeatureModel | None, *, num_classes: int, num_samples: int,
                   input_size: int | None = None, total_steps: int = 0) -> MethodContext:
    """What a method is built for: each model's feature-map shapes and vector size at `input_size` (None: the
    student's own), the class count, the training-set size (memory banks) and the schedule's steps (ramps)."""
    size = input_size or student.input_size

    def shapes(model: FeatureModel, role: str) -> tuple[tuple[int, int, int], ...]:
        try:
            return tuple(map_shapes(model, size))
        except RuntimeError as e:  # e.g. images too small for the architecture's downsampling
            raise GeometryError(role, e) from None

    return MethodContext(num_classes=num_classes, num_samples=num_samples, input_size=size,
                         student_maps=shapes(student, "student"), student_dim=student.num_features,
                         teacher_maps=shapes(teacher, "teacher") if teacher is not None else (),
                         teacher_dim=teacher.num_features if teacher is not None else 0, total_steps=total_steps)


def teacher_in_bf16(precision: str, device: torch.device) -> bool:
    """`train.teacher_precision` resolved: "bf16", or "auto" on a CPU that computes bf16 natively."""
    return precision == "bf16" or (precision == "auto" and device.type == "cpu" and torch_native_bf16())


def teacher_precision_warning(precision: str, device: torch.device) -> str | None:
    """What to tell a user who asked for a bf16 teacher on a CPU that only emulates bf16: there it is far
    slower than fp32 (a Conv-4-MP KD step measured ~7.5x on an AVX2-only EPYC), and "auto" would avoid it."""
    if precision != "bf16" or device.type != "cpu" or torch_native_bf16():
        return None
    return ('train.teacher_precision = "bf16" on a CPU without native bf16 (no AVX-512 BF16 or AMX): the '
            'teacher\'s forward pass is emulated and several times slower than fp32; "auto" uses bf16 only '
            "where the CPU has it")


@dataclass
class StepResult:
    output: MethodOutput  # the weighted terms and the estimates
    loss: torch.Tensor  # their sum, what the step minimised
    student: Features  # the student's features of the batch (its logits give the training accuracy)


@dataclass
class TrainStep:
    """One optimisation step of `student` (and `method`'s own parameters, when the optimiser holds them)
    against a frozen `teacher`. `optimizer` may be None for `forward` alone.

    `student_module`: what computes the student's features as (logits, maps, vector) when it is not
    the student itself (a DDP or torch.compile wrapper); a compiled one that fails falls back to eager,
    said once through `warn`. `autocast`: the step's precision context (train.precision). `reduce_gradients`:
    called on the method after backward (DDP averages the gradients it does not manage).
    """

    student: FeatureModel
    teacher: FeatureModel | None
    method: DistillMethod
    optimizer: torch.optim.Optimizer | None = None
    teacher_bf16: bool = False
    student_module: nn.Module | None = None
    autocast: Callable[[], AbstractContextManager] = contextlib.nullcontext
    reduce_gradients: Callable[[nn.Module], None] | None = None
    warn: Callable[[str], None] = lambda message: None

    def teacher_features(self, x: torch.Tensor) -> Features:
        """The frozen teacher's features, under no_grad (not inference_mode: its tensors could not be saved
        for backward), in bf16 autocast when `teacher_bf16` (handed on as fp32)."""
        with torch.no_grad():
            if not self.teacher_bf16:
                return self.teacher.forward_features(x)
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self.teacher.forward_features(x).float()

    def student_features(self, x: torch.Tensor) -> Features:
        if self.student_module is None:
            return self.student.forward_features(x)
        try:
            return Features(*self.student_module(x))
        except Exception as e:  # torch.compile fails in many ways on its first call; fall back to eager
            compiled = getattr(self.student_module, "_orig_mod", None)
            if compiled is None:
                raise
            self.student_module = compiled
            self.warn(f"train.compile: torch.compile failed ({type(e).__name__}); running eager")
            return Features(*self.student_module(x))

    def features(self, x: torch.Tensor) -> tuple[Features, Features | None]:
        """(student's, teacher's) features of a batch; the teacher's None when there is no teacher."""
        teacher = self.teacher_features(x) if self.teacher is not None else None
        return self.student_features(x), teacher

    def forward(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None) -> StepResult:
        """The step's forward half: both networks and the method, in the step's precision."""
        with self.autocast():
            teacher = self.teacher_features(x) if self.teacher is not None else None
            student = self.student_features(x)
            output = self.method(student, teacher, y, index)
            loss = output.total
        return StepResult(output, loss, student)

    def update(self, loss: torch.Tensor) -> None:
        """The step's second half: gradients of `loss`, reduced where asked, and the optimiser's step."""
        if self.optimizer is None:
            raise ValueError("TrainStep.update: no optimizer given")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.reduce_gradients is not None:
            self.reduce_gradients(self.method)
        self.optimizer.step()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor | None = None) -> StepResult:
        result = self.forward(x, y, index)
        self.update(result.loss)
        return result
