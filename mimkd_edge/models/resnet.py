"""CIFAR ResNets: the basic-block family (resnet8 … resnet110, resnet8x4, resnet32x4) and the
bottleneck ResNet-50 with a CIFAR stem.

Maps are the outputs of the modules named in `feature_info` (a forward hook on that module sees
the same tensor): the stem after conv-BN-ReLU, then every stage's output, all post-ReLU.
Pooling is global, so any input size of at least 8×8 works; 32×32 is the design size.
"""

from __future__ import annotations

import torch
from torch import nn

from .features import FeatureInfo, StagedModel
from .registry import register_model


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class BasicBlock(nn.Module):
    """conv3×3(stride) → BN → ReLU → conv3×3 → BN, plus the shortcut (1×1 conv + BN when the
    shape changes), then ReLU."""

    expansion = 1

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(c_in, c_out, 3, stride)
        self.relu = nn.ReLU(inplace=True)
        self.conv2, self.bn2 = _conv_bn(c_out, c_out, 3)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 → 3×3(stride) → 1×1 (×4 channels), each with BN, ReLU after the residual sum."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.conv1, self.bn1 = _conv_bn(c_in, width, 1)
        self.conv2, self.bn2 = _conv_bn(width, width, 3, stride)
        self.conv3, self.bn3 = _conv_bn(width, c_out, 1)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(StagedModel):
    """3×3 stem (stride 1, no max-pool), then stages of `blocks[i]` blocks; every stage after the
    first halves the resolution. Maps: `stem`, `layer1`, `layer2`, … ; vector after global pooling.
    """

    def __init__(self, block: type[nn.Module], blocks: list[int], widths: list[int], stem_width: int,
                 num_classes: int = 100):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, stem_width, 3), nn.ReLU(inplace=True))
        info = [FeatureInfo(stem_width, 1, "stem")]
        c_in, stride_total = stem_width, 1
        for i, (n, width) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            stride_total *= stride
            layers = []
            for j in range(n):
                layers.append(block(c_in, width, stride if j == 0 else 1))
                c_in = width * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            info.append(FeatureInfo(c_in, stride_total, f"layer{i + 1}"))
        self.stage_names = tuple(f"layer{i + 1}" for i in range(len(blocks)))
        self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        self.num_features = c_in
        self.feature_info = tuple(info)
        _init(self)


def _cifar_resnet(depth: int, widths: list[int], num_classes: int) -> CifarResNet:
    if (depth - 2) % 6:
        raise ValueError(f"basic-block CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return CifarResNet(BasicBlock, [n, n, n], widths[1:], widths[0], num_classes)


_THIN = [16, 16, 32, 64]
_WIDE = [32, 64, 128, 256]  # the "x4" variants


@register_model()
def resnet8(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(8, _THIN, num_classes)


@register_model()
def resnet14(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(14, _THIN, num_classes)


@register_model()
def resnet20(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(20, _THIN, num_classes)


@register_model()
def resnet32(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(32, _THIN, num_classes)


@register_model()
def resnet44(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(44, _THIN, num_classes)


@register_model()
def resnet56(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(56, _THIN, num_classes)


@register_model()
def resnet110(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(110, _THIN, num_classes)


@register_model()
def resnet8x4(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(8, _WIDE, num_classes)


@register_model()
def resnet32x4(num_classes: int = 100) -> CifarResNet:
    return _cifar_resnet(32, _WIDE, num_classes)


@register_model()
def resnet50(num_classes: int = 100) -> CifarResNet:
    """ResNet-50 with the CIFAR stem (3×3 conv, stride 1, no max-pool): maps 64@32, 256@32,
    512@16, 1024@8, 2048@4 at 32×32."""
    return CifarResNet(Bottleneck, [3, 4, 6, 3], [64, 128, 256, 512], 64, num_classes)
