"""Export-time rewrites: the same function as the trained student, in a form that runs faster.

A rewrite returns a new module whose logits equal the student's up to float rounding; the export
pipeline exports the rewritten module and proves it against the *original* PyTorch model (parity
≤ 1e-4 in FP32), so a wrong rewrite can never be published.

Model-specific rewrites belong to the model: `rewrite_for_export` asks it for its export form
(models/export_form.py, the way timm's `reparameterize_model` asks each module for its fused form)
and knows no model class. ShuffleNetV2's folded channel shuffle and aligned branch widths are
models/shufflenet_fold.py.

Not kept: the classifier as a 1×1 convolution of the pooled (N, D, 1, 1) map. OpenVINO runs an
INT8 Linear at batch 1 as a quantised GEMM (FullyConnectedQuantizedLegacy) whose node its counters
showed several times slower than the same weights as a 1×1 conv on an AVX2 EPYC, but end to end the
interleaved run measured no gain (ShuffleNetV2 OpenVINO INT8 1.701 → 1.735 ms), while onnxruntime
pays for the reshapes around the conv (Conv-4 INT8 0.137 → 0.144 ms);
bench/results/latency_classifier_as_conv.md and issue 19's note of 2026-12-02.

Input channels padded to 4, INT8 graphs only ("pad-input-channels"), here because it fits every
model. The first convolution of every student reads the 3 image channels. Its INT8 kernel sums u8×s8
products in groups of 4 input channels (VNNI), and with 3 OpenVINO ran Conv-4-MP's first convolution
as its slowest node, 3× its own INT8 bound. With the image padded by a zero channel (an ONNX Pad in
front, read by zero weights: the same function) OpenVINO runs it with another kernel at 1.6×
(bench/results/latency_zen4.md, the table by convolution shape): Conv-4-MP INT8 1.11–1.35× faster end
to end in onnxruntime over eight runs (1.15× in six), 0.97–1.07× in OpenVINO; Conv-4 and ResNet-8x4 up
to 1.07× and 1.04×, ShuffleNetV2 within noise (the report's rewrite table; README). In FP32 the extra
channel is a third more work in that convolution and no faster kernel, so FP32 artifacts keep 3.
"""

from __future__ import annotations

import copy
from collections.abc import Collection

import torch
from torch import nn

from ..models.export_form import ExportForm
from .plan import INT8_REWRITES

INPUT_CHANNEL_ALIGN = 4  # u8×s8 dot products sum 4 channels (VNNI vpdpbusd)


def rewrite_for_export(model: nn.Module, rewrites: Collection[str] | None = None) -> ExportForm:
    """The faster equivalent form `model` offers for export (its export hook, models/export_form.py),
    made with the named `rewrites` only (None: every rewrite it offers), and which rewrites made it."""
    offered = tuple(getattr(model, "export_rewrites", ()))
    wanted = set(offered if rewrites is None else rewrites)
    unknown = wanted - set(offered)
    if unknown:
        raise ValueError(f"unknown rewrites {sorted(unknown)} for {type(model).__name__}; "
                         f"it offers: {', '.join(offered) or 'none'}")
    return model.export_form(frozenset(wanted)) if wanted else ExportForm(model, ())


def rewrite_for_int8(model: nn.Module, input_channels: int = 3, input_size: int = 32) -> ExportForm:
    """The form of `model` (already rewritten by `rewrite_for_export`, or not) that its INT8 artifacts
    are quantised from: the convolution that reads the image gets its input padded to a multiple of
    INPUT_CHANNEL_ALIGN channels. The image's shape is what one forward pass finds that convolution with."""
    name = _input_convolution(model, input_channels, input_size)
    conv = model.get_submodule(name) if name is not None else None
    if conv is None or conv.in_channels % INPUT_CHANNEL_ALIGN == 0 or conv.groups != 1:
        return ExportForm(model, ())
    padded = copy.deepcopy(model).train(model.training)  # a deep-copied fx GraphModule (torchvision models)
    parent, _, attr = name.rpartition(".")                  # comes back with its submodules in training mode
    setattr(padded.get_submodule(parent), attr, ChannelPaddedConv(conv, INPUT_CHANNEL_ALIGN))
    return ExportForm(padded, INT8_REWRITES)


class ChannelPaddedConv(nn.Module):
    """`conv` on its input padded with zero channels up to a multiple of `align`; the extra channels'
    weights are zero, so the output is the same."""

    def __init__(self, conv: nn.Conv2d, align: int):
        super().__init__()
        self.extra = -conv.in_channels % align
        self.conv = nn.Conv2d(conv.in_channels + self.extra, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, bias=conv.bias is not None,
                              padding_mode=conv.padding_mode)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, :conv.in_channels] = conv.weight
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra)))


@torch.no_grad()
def _input_convolution(model: nn.Module, input_channels: int, input_size: int) -> str | None:
    """The qualified name of the nn.Conv2d that reads the model's input tensor itself (found by one
    forward pass on a blank image), or None."""
    seen: list[str] = []
    x = torch.zeros(1, input_channels, input_size, input_size)

    def hook(name):
        return lambda module, inputs: seen.append(name) if inputs[0] is x else None

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules() if type(m) is nn.Conv2d]
    was_training = model.training
    try:
        model.eval()(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen[0] if len(seen) == 1 else None  # none, or read by several convolutions: leave the graph as it is
