"""VGG with BatchNorm, CIFAR variant: five conv blocks, a 2×2 max-pool after each of the first
three, none between the fourth and fifth, then global average pooling and one linear layer.

Every conv is 3×3, padding 1, with a bias, followed by BN and ReLU. Maps are the outputs of
`block0..block4` (post-ReLU): 64@32, 128@16, 256@8, 512@4, 512@4 at 32×32. Any input size of at
least 8×8 works (the 4th and 5th blocks run at input / 8).
"""

from __future__ import annotations

import torch
from torch import nn

from .features import FeatureInfo, FeatureModel, Features
from .registry import register_model

# Channels of each conv, per block.
_CFG: dict[str, list[list[int]]] = {
    "vgg8": [[64], [128], [256], [512], [512]],
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


class VGG(FeatureModel):
    def __init__(self, cfg: list[list[int]], num_classes: int = 100):
        super().__init__()
        c_in, stride = 3, 1
        info = []
        for i, widths in enumerate(cfg):
            layers: list[nn.Module] = []
            for c_out in widths:
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
                c_in = c_out
            setattr(self, f"block{i}", nn.Sequential(*layers))
            info.append(FeatureInfo(c_in, stride, f"block{i}"))
            if i < 3:
                setattr(self, f"pool{i}", nn.MaxPool2d(2))
                stride *= 2
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        self.num_features = c_in
        self.feature_info = tuple(info)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> Features:
        maps = []
        x = self.block0(x)
        maps.append(x)
        x = self.block1(self.pool0(x))
        maps.append(x)
        x = self.block2(self.pool1(x))
        maps.append(x)
        x = self.block3(self.pool2(x))
        maps.append(x)
        x = self.block4(x)
        maps.append(x)
        vector = torch.flatten(self.pool(x), 1)
        return Features(self.fc(vector), maps, vector)


@register_model()
def vgg8(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg8"], num_classes)


@register_model()
def vgg11(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg11"], num_classes)


@register_model()
def vgg13(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg13"], num_classes)


@register_model()
def vgg16(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg16"], num_classes)


@register_model()
def vgg19(num_classes: int = 100) -> VGG:
    return VGG(_CFG["vgg19"], num_classes)
