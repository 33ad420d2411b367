"""count_params / count_macs: hand-computed layers and reference MAC counts of four zoo models."""

from __future__ import annotations

import pytest
from torch import nn

from mimkd_edge.models import create_model
from mimkd_edge.models.cost import count_macs, count_params


# At 32×32. Conv-4 and Conv-4-MP by hand from their layers (four 3×3 convolutions of 64 filters: stride 2, or
# stride 1 with a 2×2 max-pool after each; 3.54 M and 14.16 M); ShuffleNetV2 (CIFAR stem) and ResNet-8x4 as
# this project first measured them, the figures its latency bounds were set against.
@pytest.mark.parametrize("name, macs", [("conv4", 3.5e6), ("conv4_mp", 14.2e6), ("shufflenetv2", 45.1e6),
                                        ("resnet8x4", 177e6)])
def test_reference_macs(name, macs):
    n = count_macs(create_model(name, num_classes=100), 32)
    assert isinstance(n, int)
    assert abs(n - macs) <= 0.03 * macs, f"{name}: {n:,} MACs vs {macs:,.0f}"


def test_conv_linear_depthwise_grouped_by_hand():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),              # 8·8·8 outputs × 3·9        = 13,824
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # 8·4·4 × 1·9 (depthwise) = 1,152
        nn.Conv2d(8, 12, 1, groups=4),              # 12·4·4 × 2                 = 384
        nn.Flatten(),
        nn.Linear(12 * 16, 5),                      # 5 × 192                    = 960
    )
    assert count_macs(model, 8) == 13_824 + 1_152 + 384 + 960
    assert count_macs(model[:3], (8, 16)) == 2 * (13_824 + 1_152 + 384)  # (H, W) input
    # count_params: weights and biases, a shared tensor once.
    assert count_params(model) == (8 * 27 + 8) + (8 * 9 + 8) + (12 * 2 + 12) + (192 * 5 + 5)
    shared = nn.Sequential(model[0], model[0])
    assert count_params(shared) == 8 * 27 + 8
    model[0].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == count_params(model) - 8 * 27


def test_count_macs_defaults_and_restores_mode():
    model = create_model("conv4", num_classes=10).train()
    assert count_macs(model) == count_macs(model, model.input_size)  # default: the design size
    assert model.training
    assert all(m.training for m in model.modules())
    assert not any(m._forward_hooks for m in model.modules())  # hooks removed
