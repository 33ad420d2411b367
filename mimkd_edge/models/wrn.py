"""Wide ResNets for CIFAR (WRN-d-k): pre-activation basic blocks, widths 16, 16k, 32k, 64k.

WRN-d-k has (d − 4) / 6 blocks per stage. Maps are the outputs of the modules named in
`feature_info`: `stem` (the first 3×3 conv) and `layer1..3`. Because the blocks are
pre-activation, these are raw residual sums, before BN and ReLU (the next block, or the final
`head` BN-ReLU, normalises them); the vector is taken after `head` and global pooling.
Any input size of at least 4×4 works; 32×32 is the design size.
"""

from __future__ import annotations

import torch
from torch import nn

from .features import FeatureInfo, StagedModel
from .registry import register_model


class PreActBlock(nn.Module):
    """BN → ReLU → conv3×3(stride) → BN → ReLU → conv3×3, plus the shortcut.

    When the shape changes the shortcut is a 1×1 conv applied to the pre-activated input (as in
    the original WRN); otherwise it is the identity on the raw input.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        equal = c_in == c_out and stride == 1
        self.shortcut = None if equal else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        if self.shortcut is None:  # fixed at construction, not data-dependent
            return out + x
        return out + self.shortcut(act)


class WideResNet(StagedModel):
    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, depth: int, widen: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        info = [FeatureInfo(widths[0], 1, "stem")]
        c_in, total = widths[0], 1
        for i in range(3):
            stride = 1 if i == 0 else 2
            total *= stride
            blocks = [PreActBlock(c_in if j == 0 else widths[i + 1], widths[i + 1], stride if j == 0 else 1)
                      for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = widths[i + 1]
            info.append(FeatureInfo(c_in, total, f"layer{i + 1}"))
        self.head = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        self.num_features = c_in
        self.feature_info = tuple(info)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


@register_model()
def wrn_16_1(num_classes: int = 100) -> WideResNet:
    return WideResNet(16, 1, num_classes)


@register_model()
def wrn_16_2(num_classes: int = 100) -> WideResNet:
    return WideResNet(16, 2, num_classes)


@register_model()
def wrn_40_1(num_classes: int = 100) -> WideResNet:
    return WideResNet(40, 1, num_classes)


@register_model()
def wrn_40_2(num_classes: int = 100) -> WideResNet:
    return WideResNet(40, 2, num_classes)
