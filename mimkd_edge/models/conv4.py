"""Conv-4 and Conv-4-MP: the shallow CPU-friendly students of the paper's appendix A.6."""

from __future__ import annotations

import torch
from torch import nn

from .features import FeatureInfo, FeatureModel, Features
from .registry import register_model


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class Conv4(FeatureModel):
    """Four [3×3 conv 64 → BN → ReLU] blocks, downsampling by stride 2 or by a 2×2 max-pool after each."""

    def __init__(self, num_classes: int = 100, width: int = 64, max_pool: bool = False):
        super().__init__()
        stride = 1 if max_pool else 2
        blocks = []
        c_in = 3
        for _ in range(4):
            layers = _block(c_in, width, stride)
            if max_pool:
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            c_in = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width
        self.feature_info = tuple(FeatureInfo(width, 2 ** (i + 1), f"blocks.{i}") for i in range(4))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> Features:
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        vector = torch.flatten(self.pool(x), 1)
        return Features(self.fc(vector), maps, vector)


@register_model()
def conv4(num_classes: int = 100) -> Conv4:
    return Conv4(num_classes, max_pool=False)


@register_model()
def conv4_mp(num_classes: int = 100) -> Conv4:
    return Conv4(num_classes, max_pool=True)
