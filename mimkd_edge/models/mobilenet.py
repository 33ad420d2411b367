"""MobileNetV2 for CIFAR as the reference KD code defines it (width 0.5, expansion 6 → "mobilenetv2").

Differences from the ImageNet network: ReLU instead of ReLU6; every inverted residual block
(including the t = 1 one) has its 1×1 expansion conv; width-scaled channels are truncated
(`int(c × width)`), the last 1×1 conv keeps 1280 channels for width ≤ 1; the stem keeps its
stride 2, so a 32×32 input ends at 2×2.

Maps are the outputs of the modules named in `feature_info`: `stem` (post-ReLU), then the
outputs of block groups 1, 2, 4 and 6 (the linear bottlenecks: no ReLU after the projection):
16@16, 12@16, 16@8, 48@4, 160@2 at 32×32. Any input size of at least 16×16 works.
"""

from __future__ import annotations

import torch
from torch import nn

from .features import FeatureInfo, FeatureModel, Features
from .registry import register_model

# (expansion, channels, repeats, stride) per block group; expansion None = the model's `t`.
_SETTING = [(1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2),
            (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1)]
_MAP_GROUPS = (1, 2, 4, 6)  # block groups whose outputs are maps (after the stem)


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class InvertedResidual(nn.Module):
    """1×1 expand → depthwise 3×3(stride) → 1×1 project (linear); identity added when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            *_conv_bn_relu(c_in, hidden, 1),
            *_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + x if self.residual else out  # fixed at construction


class MobileNetV2(FeatureModel):
    def __init__(self, expansion: int = 6, width: float = 0.5, num_classes: int = 100):
        super().__init__()
        c_in = int(32 * width)
        self.stem = nn.Sequential(*_conv_bn_relu(3, c_in, 3, stride=2))
        info = [FeatureInfo(c_in, 2, "stem")]
        groups = []
        stride_total = 2
        for g, (t, c, n, s) in enumerate(_SETTING):
            c_out = int(c * width)
            blocks = []
            for j in range(n):
                blocks.append(InvertedResidual(c_in, c_out, s if j == 0 else 1, expansion if t is None else t))
                c_in = c_out
            groups.append(nn.Sequential(*blocks))
            stride_total *= s
            if g in _MAP_GROUPS:
                info.append(FeatureInfo(c_out, stride_total, f"blocks.{g}"))
        self.blocks = nn.ModuleList(groups)
        last = int(1280 * width) if width > 1.0 else 1280
        self.head = nn.Sequential(*_conv_bn_relu(c_in, last, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last, num_classes)
        self.num_features = last
        self.feature_info = tuple(info)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> Features:
        x = self.stem(x)
        maps = [x]
        for g, group in enumerate(self.blocks):
            x = group(x)
            if g in _MAP_GROUPS:
                maps.append(x)
        vector = torch.flatten(self.pool(self.head(x)), 1)
        return Features(self.fc(vector), maps, vector)


@register_model()
def mobilenetv2(num_classes: int = 100) -> MobileNetV2:
    """Width 0.5, expansion 6: the reference code's "MobileNetV2" student (0.81M params)."""
    return MobileNetV2(expansion=6, width=0.5, num_classes=num_classes)

