"""ShuffleNetV2's export form (models/shufflenet_fold.py): the shuffle folded away, the same logits."""

from __future__ import annotations

import pytest
import torch
from helpers import with_bn_statistics

from mimkd_edge.models import list_models
from mimkd_edge.models.shufflenet_fold import fold_channel_shuffle


@pytest.mark.parametrize("name", list_models("shufflenetv2*"))
@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (3, 3, 40, 40)])
@pytest.mark.parametrize("align", [1, 8])
@torch.no_grad()
def test_folded_shufflenetv2_computes_the_same_logits(name, shape, align):
    model = with_bn_statistics(name)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    ref = model(x)
    diff = float((fold_channel_shuffle(model, align=align)(x) - ref).abs().max())
    assert diff <= 1e-5 * max(1.0, float(ref.abs().max())), diff


def test_aligned_branches_are_padded_to_the_block_and_nothing_else_grows():
    model = with_bn_statistics("shufflenetv2")  # 1×: 58-channel branches in stage 1
    plain, aligned = fold_channel_shuffle(model), fold_channel_shuffle(model, align=8)
    for p, a in zip(plain.steps, aligned.steps, strict=True):
        widths = [(c.in_channels, c.out_channels) for c in p.convs]
        padded = [(c.in_channels, c.out_channels) for c in a.convs]
        if len(widths) == 3 and p.convs[1].groups > 1:  # 1×1 → depthwise → 1×1
            assert padded[0] == (widths[0][0], -(-widths[0][1] // 8) * 8) and padded[2][1] == widths[2][1]
        else:
            assert padded == widths
    assert any(c.out_channels == 64 for s in aligned.steps for c in s.convs)  # 58 → 64


def test_the_export_form_is_the_aligned_fold_and_names_it():
    model = with_bn_statistics("shufflenetv2_0_5")
    form = model.export_form({"fold-channel-shuffle", "align-branch-width"})
    assert form.applied == ("fold-channel-shuffle", "align-branch-width")
    assert model.export_form({"fold-channel-shuffle"}).applied == ("fold-channel-shuffle",)
    assert model.export_form({"align-branch-width"}).module is model  # alignment only comes with the fold
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(form.module(x), fold_channel_shuffle(model, align=8)(x))
