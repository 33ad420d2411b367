"""The one feature API every model exposes and every distillation loss consumes.

A model's `forward` returns logits only (what gets exported); `forward_features` returns the
same logits together with the intermediate maps, shallow → deep, and the pre-classifier vector.
No loss reaches into a model through hooks: it reads `Features`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import torch
from torch import nn

from .export_form import ExportForm


@dataclass(frozen=True)
class FeatureInfo:
    """One intermediate map: its channel count and its stride w.r.t. the input."""

    channels: int
    stride: int
    name: str  # the stable module path that produces it, so a recipe can name it


@dataclass
class Features:
    logits: torch.Tensor
    maps: list[torch.Tensor]  # (N, C, H, W) each, shallow → deep; the final vector is not here
    vector: torch.Tensor  # (N, D) pre-classifier, after global pooling

    def detach(self) -> Features:
        """The same features as constants: a teacher's, so that no loss can send gradients into it,
        even when a caller hands in tensors that require grad. Costs nothing (views)."""
        return Features(self.logits.detach(), [m.detach() for m in self.maps], self.vector.detach())

    def float(self) -> Features:
        """The same features in fp32: a teacher run under bf16 autocast hands the method what it expects."""
        return Features(self.logits.float(), [m.float() for m in self.maps], self.vector.float())


class FeatureModel(nn.Module):
    """Base class: subclasses set `feature_info`, `num_features`, and implement `forward_features`.

    `input_size` is the side the model was designed for; none of ours hard-wire it (pooling is
    global), so any size its downsampling survives works.
    """

    feature_info: tuple[FeatureInfo, ...] = ()
    num_features: int = 0
    num_classes: int = 0
    input_size: int = 32
    export_rewrites: tuple[str, ...] = ()  # the export hook (models/export_form.py): none by default

    def forward_features(self, x: torch.Tensor) -> Features:  # pragma: no cover - abstract
        raise NotImplementedError

    def export_form(self, rewrites: Set[str]) -> ExportForm:
        """The faster equivalent to export, made with the named `rewrites` (models/export_form.py).
        A model that offers none exports as it is."""
        return ExportForm(self, ())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x).logits


class StagedModel(FeatureModel):
    """stem → named stages (each output is a map) → head → global pool → fc: the shape shared by the
    CIFAR ResNets, WRNs and ShuffleNets. Subclasses build `stem`, the stages named in `stage_names`,
    `head` (nn.Identity when there is none), `pool` and `fc`."""

    stage_names: tuple[str, ...] = ()

    def forward_features(self, x: torch.Tensor) -> Features:
        x = self.stem(x)
        maps = [x]
        for name in self.stage_names:
            x = getattr(self, name)(x)
            maps.append(x)
        vector = torch.flatten(self.pool(self.head(x)), 1)
        return Features(self.fc(vector), maps, vector)


@torch.no_grad()
def map_shapes(model: FeatureModel, input_size: int | None = None) -> list[tuple[int, int, int]]:
    """(C, H, W) of every map at `input_size`, by one batch-1 forward (eval mode, restored after)."""
    size = input_size or model.input_size
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        chans = getattr(model, "in_chans", 3)
        feats = model.forward_features(torch.zeros(1, chans, size, size, dtype=p.dtype, device=p.device))
    finally:
        model.train(was_training)
    return [tuple(m.shape[1:]) for m in feats.maps]
