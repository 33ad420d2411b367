"""ShuffleNet V1 (g = 3) and V2 for CIFAR, as the reference KD code lays them out: a 1×1 stem
conv 3→24 at stride 1, no max-pool, three stages that each start with a stride-2 block.

Maps are the outputs of the modules named in `feature_info`: `stem` (post-ReLU) and
`layer1..3` (block outputs; every channel is post-ReLU). At 32×32: V1 24@32, 240@16, 480@8,
960@4; V2 (1×) 24@32, 116@16, 232@8, 464@4 with a 1024-d vector from the 1×1 `head` conv.

Export notes: the channel shuffle reshapes with -1 in the batch position and never reads the
batch size; the V2 channel split slices at a channel index fixed at construction (no `chunk`).
Any input size of at least 8×8 works. V2 exports in a faster equivalent form, its channel shuffle
folded into the convolutions (`ShuffleNetV2.export_form`, models/shufflenet_fold.py); V1 as it is.
"""

from __future__ import annotations

from collections.abc import Set

import torch
from torch import nn

from .export_form import ExportForm
from .features import FeatureInfo, StagedModel
from .registry import register_model


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(N, g·k, H, W) → (N, k·g, H, W): interleave the g channel groups. Batch left symbolic."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    return x.reshape(-1, groups, c // groups, h, w).transpose(1, 2).reshape(-1, c, h, w)


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out)]


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


# --------------------------------------------------------------------------- ShuffleNet V1
class ShuffleV1Block(nn.Module):
    """Grouped 1×1 → shuffle → depthwise 3×3(stride) → grouped 1×1, with BN; stride 2 concatenates
    a 3×3 average-pooled shortcut (so the branch makes `c_out − c_in` channels), stride 1 adds the
    identity; ReLU after. The first block after the 24-channel stem uses an ungrouped first 1×1."""

    def __init__(self, c_in: int, c_out: int, stride: int, groups: int):
        super().__init__()
        self.stride = stride
        branch_out = c_out - c_in if stride == 2 else c_out
        mid = branch_out // 4
        self.g1 = 1 if c_in == 24 else groups
        self.conv1, self.bn1 = _conv_bn(c_in, mid, 1, groups=self.g1)
        self.conv2, self.bn2 = _conv_bn(mid, mid, 3, stride, groups=mid)
        self.conv3, self.bn3 = _conv_bn(mid, branch_out, 1, groups=groups)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        if self.g1 > 1:
            out = channel_shuffle(out, self.g1)
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        # stride fixed at construction: downsampling units concatenate, the others add
        out = torch.cat([out, self.shortcut(x)], 1) if self.stride == 2 else out + x
        return self.relu(out)


class ShuffleNetV1(StagedModel):
    stage_names = ("layer1", "layer2", "layer3")

    def __init__(self, widths: tuple[int, int, int], blocks: tuple[int, int, int], groups: int,
                 num_classes: int = 100):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 24, 1), nn.ReLU(inplace=True))
        info = [FeatureInfo(24, 1, "stem")]
        c_in = 24
        for i, (c_out, n) in enumerate(zip(widths, blocks, strict=True)):
            layer = [ShuffleV1Block(c_in if j == 0 else c_out, c_out, 2 if j == 0 else 1, groups) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            c_in = c_out
            info.append(FeatureInfo(c_out, 2 ** (i + 1), f"layer{i + 1}"))
        self.head = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        self.num_features = c_in
        self.feature_info = tuple(info)
        _init(self)


@register_model()
def shufflenetv1(num_classes: int = 100) -> ShuffleNetV1:
    """g = 3: stages of 4 / 8 / 4 blocks at 240 / 480 / 960 channels."""
    return ShuffleNetV1((240, 480, 960), (4, 8, 4), 3, num_classes)


# --------------------------------------------------------------------------- ShuffleNet V2
class ShuffleV2Block(nn.Module):
    """Split the channels in half; the second half goes 1×1 → BN-ReLU → depthwise 3×3 → BN →
    1×1 → BN-ReLU; concatenate with the untouched first half; shuffle (2 groups)."""

    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        c = channels - self.half
        self.branch = nn.Sequential(
            *_conv_bn(c, c, 1), nn.ReLU(inplace=True),
            *_conv_bn(c, c, 3, groups=c),
            *_conv_bn(c, c, 1), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([x[:, : self.half], self.branch(x[:, self.half :])], 1)
        return channel_shuffle(out, 2)


class ShuffleV2Down(nn.Module):
    """Stride-2 block: both branches see the whole input; left = depthwise 3×3/2 → BN → 1×1 →
    BN-ReLU, right = 1×1 → BN-ReLU → depthwise 3×3/2 → BN → 1×1 → BN-ReLU; concatenate; shuffle."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        mid = c_out // 2
        self.left = nn.Sequential(
            *_conv_bn(c_in, c_in, 3, 2, groups=c_in),
            *_conv_bn(c_in, mid, 1), nn.ReLU(inplace=True),
        )
        self.right = nn.Sequential(
            *_conv_bn(c_in, mid, 1), nn.ReLU(inplace=True),
            *_conv_bn(mid, mid, 3, 2, groups=mid),
            *_conv_bn(mid, mid, 1), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1), 2)


class ShuffleNetV2(StagedModel):
    stage_names = ("layer1", "layer2", "layer3")
    export_rewrites = ("fold-channel-shuffle", "align-branch-width")  # the latter only with the fold

    def __init__(self, widths: tuple[int, int, int, int], blocks: tuple[int, int, int] = (3, 7, 3),
                 num_classes: int = 100):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 24, 1), nn.ReLU(inplace=True))
        info = [FeatureInfo(24, 1, "stem")]
        c_in = 24
        for i, (c_out, n) in enumerate(zip(widths[:3], blocks, strict=True)):
            layer = [ShuffleV2Down(c_in, c_out)] + [ShuffleV2Block(c_out) for _ in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            c_in = c_out
            info.append(FeatureInfo(c_out, 2 ** (i + 1), f"layer{i + 1}"))
        self.head = nn.Sequential(*_conv_bn(c_in, widths[3], 1), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        self.num_features = widths[3]
        self.feature_info = tuple(info)
        _init(self)

    def export_form(self, rewrites: Set[str]) -> ExportForm:
        """No shuffle, no slice of the untouched half, no BatchNorm; with "align-branch-width" the
        branches padded to onnxruntime's channel block too (models/shufflenet_fold.py says why)."""
        from .shufflenet_fold import BRANCH_ALIGN, fold_channel_shuffle  # it builds on this module's blocks

        if "fold-channel-shuffle" not in rewrites:
            return ExportForm(self, ())
        aligned = "align-branch-width" in rewrites
        folded = fold_channel_shuffle(self, align=BRANCH_ALIGN if aligned else 1)
        return ExportForm(folded, ("fold-channel-shuffle",) + (("align-branch-width",) if aligned else ()))


@register_model()
def shufflenetv2(num_classes: int = 100) -> ShuffleNetV2:
    """1×: 116 / 232 / 464 channels, 1024-d head (the paper's ShuffleNetV2 student)."""
    return ShuffleNetV2((116, 232, 464, 1024), num_classes=num_classes)


@register_model()
def shufflenetv2_0_5(num_classes: int = 100) -> ShuffleNetV2:
    return ShuffleNetV2((48, 96, 192, 1024), num_classes=num_classes)


@register_model()
def shufflenetv2_1_5(num_classes: int = 100) -> ShuffleNetV2:
    return ShuffleNetV2((176, 352, 704, 1024), num_classes=num_classes)


@register_model()
def shufflenetv2_2_0(num_classes: int = 100) -> ShuffleNetV2:
    return ShuffleNetV2((244, 488, 976, 2048), num_classes=num_classes)
