"""Model cost: parameter count and multiply-accumulates, measured where the model is defined.

`count_macs` runs one batch-1 forward with hooks on every Conv2d and Linear and adds up the
multiply-accumulates those layers perform (bias additions, BatchNorm, activations, pooling and
element-wise adds are not counted: on these networks convolutions and linears dominate). Grouped
and depthwise convolutions count `C_in / groups` inputs per output, so a depthwise 3×3 costs
9 MACs per output element.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return int(total)


def _conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    k = 1
    for s in module.kernel_size:
        k *= s
    per_output = (module.in_channels // module.groups) * k
    return int(out.numel() // out.shape[0]) * per_output


def _linear_macs(module: nn.Linear, out: torch.Tensor) -> int:
    # (N, ..., out_features): every output element costs in_features MACs.
    return int(out.numel() // out.shape[0]) * module.in_features


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int | tuple[int, int] | None = None,
               in_channels: int | None = None) -> int:
    """Multiply-accumulates of one image (batch 1) at `input_size` (side, or (H, W)).

    Defaults to the model's `input_size` attribute (32 for the CIFAR zoo). The model is run in
    eval mode and its training flag restored afterwards.
    """
    if input_size is None:
        input_size = getattr(model, "input_size", 32)
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    total = 0

    def hook(module: nn.Module, _inputs, out) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += _conv_macs(module, out)
        elif isinstance(module, nn.Linear):
            total += _linear_macs(module, out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        kw = {"dtype": p.dtype, "device": p.device} if p is not None else {}
        model(torch.zeros(1, in_channels or getattr(model, "in_chans", 3), h, w, **kw))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return int(total)
