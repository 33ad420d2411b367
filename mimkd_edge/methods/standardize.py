"""Per-channel standardisation of a frozen network's features by running statistics.

Why MIMKD's critics see the teacher through this: an MI bound does not change under an invertible
map of either variable, but a critic's *optimisation* does. The critics are MLPs whose scores grow
with their inputs, so their gradients grow with the teacher's activations. A ResNet-56 trained for
one epoch has maps up to 6.5e4 and a pre-classifier vector up to 3.5e4 (measured on the synthetic
set): at the paper's lr 0.05 the local critic's gradient norm was 1.5e4 on the first step, the
loss 7e11 on the second and inf on the sixth. Standardising each teacher channel — x ↦ (x − μ_c)/σ_c
with μ, σ constants of the data, not of the batch — is an invertible per-channel affine map: the
mutual information being estimated is exactly the same, and every critic sees unit-scale inputs
whatever teacher a user brings (short-trained, unnormalised, an ImageNet backbone).

The teacher is frozen and the data stationary, so the statistics are a cumulative average over
every batch seen (no momentum to tune); they are buffers, saved with the method and restored on
resume. Gradients never flow through μ and σ. Under DDP pass `gather` so every rank averages the
same statistics (each sees a different batch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class RunningStandardizer(nn.Module):
    """(x − mean) / sqrt(var + eps) per channel; channel = dim 1 of a (N, C) vector or (N, C, H, W) map."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        # float64: var = E[x²] − mean² cancels badly in float32 when |mean| ≫ std (large activations)
        self.register_buffer("mean", torch.zeros(channels, dtype=torch.float64))
        self.register_buffer("sq_mean", torch.ones(channels, dtype=torch.float64))  # E[x²]
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"channels={self.mean.numel()}, eps={self.eps}"

    @staticmethod
    def _moments(x: torch.Tensor) -> torch.Tensor:
        """(2, C) float64: per-channel mean of x and of x² over the batch (and locations). The batch
        variance comes from a two-pass float32 reduction (no float64 copy of a whole map), and E[x²] is
        formed from it in float64, where `var = E[x²] − mean²` later cancels harmlessly."""
        dims = (0, *range(2, x.dim()))
        var, mean = torch.var_mean(x.detach().float(), dim=dims, correction=0)
        mean = mean.double()
        return torch.stack([mean, var.double() + mean.pow(2)])

    @torch.no_grad()
    def observe(self, x: torch.Tensor, gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Fold one batch into the cumulative statistics (each batch weighs the same). Tensor
        arithmetic only: no device-to-host read per step on a GPU."""
        moments = self._moments(x)
        if gather is not None:  # every rank's batch moments, averaged: identical statistics everywhere
            moments = gather(moments.unsqueeze(0)).mean(0)
        self.count.add_(1)
        self.mean.add_((moments[0] - self.mean) / self.count)
        self.sq_mean.add_((moments[1] - self.sq_mean) / self.count)
        self._observed = True

    def _has_statistics(self) -> bool:
        """Whether any batch was observed; read from the device once, then remembered (count only grows)."""
        if not getattr(self, "_observed", False):
            self._observed = bool(self.count > 0)
        return self._observed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:  # e.g. no memory rows drawn yet: nothing to standardise, no moments to take
            return x
        if self._has_statistics():
            mean, sq_mean = self.mean, self.sq_mean
        else:  # nothing observed yet (e.g. evaluation of a fresh method): this batch's own
            mean, sq_mean = self._moments(x)
        var = (sq_mean - mean.pow(2)).clamp_min(0)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        shift, scale = mean.float().view(shape), (var + self.eps).rsqrt().float().view(shape)
        return ((x.float() - shift) * scale).to(x.dtype)
