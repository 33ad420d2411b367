"""Every registered model against the one feature API and the reference CIFAR models' sizes and maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mimkd_edge.models import FeatureModel, create_model, list_models, model_entry
from mimkd_edge.models.cost import count_params

ALL = list_models()
CIFAR = [n for n in ALL if model_entry(n).family == "cifar"]
SIZE = {"cifar": 32, "imagenet": 64}  # small inputs keep the suite fast

# Parameter counts, in millions, at num_classes=100, of the reference CIFAR definitions (RepDistiller's models,
# whose figures the paper and the field quote): ours must land within 1%.
DESIGN_PARAMS_M = {
    "resnet8x4": 1.23, "resnet32x4": 7.43, "resnet20": 0.28, "resnet56": 0.86, "resnet110": 1.74,
    "wrn_16_1": 0.18, "wrn_40_1": 0.57, "wrn_16_2": 0.70, "wrn_40_2": 2.26,
    "vgg8": 3.97, "vgg13": 9.46, "mobilenetv2": 0.81, "shufflenetv1": 0.95, "shufflenetv2": 1.36,
    "resnet50": 23.71, "conv4": 0.12, "conv4_mp": 0.12,
}
# Not among those reference figures: exact counts of our definitions at num_classes=100 (regression values).
# torchvision: its published 1000-class counts minus 900 classes × (vector + bias).
_TV_1000 = {"tv_resnet18": (11_689_512, 512), "tv_resnet34": (21_797_672, 512), "tv_resnet50": (25_557_032, 2048),
            "tv_shufflenet_v2_x1_0": (2_278_604, 1024), "tv_mobilenet_v2": (3_504_872, 1280)}
EXACT_PARAMS = {
    "resnet8": 83_892, "resnet14": 181_108, "resnet32": 472_756, "resnet44": 667_188,
    "vgg11": 9_277_284, "vgg16": 14_774_436, "vgg19": 20_086_692,
    "shufflenetv2_0_5": 443_716, "shufflenetv2_1_5": 2_580_548, "shufflenetv2_2_0": 5_549_320,
    **{name: n - 900 * (d + 1) for name, (n, d) in _TV_1000.items()},
}
# Map shapes at 32×32 (C, H), shallow to deep, of the same reference definitions (the paper's Tables 4 and 5
# pair teacher and student maps of these sizes); vector size last.
DESIGN_MAPS = {
    "resnet8x4": ([(32, 32), (64, 32), (128, 16), (256, 8)], 256),
    "resnet32x4": ([(32, 32), (64, 32), (128, 16), (256, 8)], 256),
    **{f"resnet{d}": ([(16, 32), (16, 32), (32, 16), (64, 8)], 64) for d in (8, 14, 20, 32, 44, 56, 110)},
    "wrn_16_1": ([(16, 32), (16, 32), (32, 16), (64, 8)], 64),
    "wrn_40_1": ([(16, 32), (16, 32), (32, 16), (64, 8)], 64),
    "wrn_16_2": ([(16, 32), (32, 32), (64, 16), (128, 8)], 128),
    "wrn_40_2": ([(16, 32), (32, 32), (64, 16), (128, 8)], 128),
    **{f"vgg{d}": ([(64, 32), (128, 16), (256, 8), (512, 4), (512, 4)], 512) for d in (8, 11, 13, 16, 19)},
    "mobilenetv2": ([(16, 16), (12, 16), (16, 8), (48, 4), (160, 2)], 1280),
    "shufflenetv1": ([(24, 32), (240, 16), (480, 8), (960, 4)], 960),
    "shufflenetv2": ([(24, 32), (116, 16), (232, 8), (464, 4)], 1024),
    "resnet50": ([(64, 32), (256, 32), (512, 16), (1024, 8), (2048, 4)], 2048),
    "conv4": ([(64, 16), (64, 8), (64, 4), (64, 2)], 64),
    "conv4_mp": ([(64, 16), (64, 8), (64, 4), (64, 2)], 64),
}


def _input(name: str, batch: int, seed: int = 0) -> torch.Tensor:
    size = SIZE[model_entry(name).family]
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_every_model_has_a_param_figure():
    missing = [n for n in ALL if n not in DESIGN_PARAMS_M and n not in EXACT_PARAMS]
    assert not missing, f"add these models' parameter counts to the tables: {missing}"


@pytest.mark.parametrize("name", ALL)
def test_param_count(name, cached_model):
    model = cached_model(name)  # 10 classes; the classifier is Linear(num_features, classes)
    n = count_params(model) + 90 * (model.num_features + 1)
    if name in DESIGN_PARAMS_M:
        expected = DESIGN_PARAMS_M[name] * 1e6
        assert abs(n - expected) <= 0.01 * expected, f"{name}: {n:,} params vs the reference {expected:,.0f}"
    else:
        assert n == EXACT_PARAMS[name]


@pytest.mark.parametrize("name", ALL)
def test_forward_shapes_and_feature_info(name, cached_model):
    model = cached_model(name).eval()
    assert isinstance(model, FeatureModel)
    entry = model_entry(name)
    assert model.input_size == entry.input_size == (32 if entry.family == "cifar" else 224)
    x = _input(name, 2)
    size = x.shape[-1]

    # The maps a forward hook sees on each named module (cloned: catches later in-place edits).
    hooked: dict[int, torch.Tensor] = {}
    handles = []
    for i, info in enumerate(model.feature_info):
        module = model.get_submodule(info.name)  # every name is a real module path
        if entry.family == "cifar":  # torchvision graphs call the leaves, not the containers
            handles.append(module.register_forward_hook(
                lambda m, a, out, i=i: hooked.__setitem__(i, out.detach().clone())))
    feats = model.forward_features(x)
    for h in handles:
        h.remove()

    assert feats.logits.shape == (2, 10)
    assert feats.vector.shape == (2, model.num_features)
    torch.testing.assert_close(model(x), feats.logits, rtol=0, atol=0)
    assert len(feats.maps) == len(model.feature_info) > 0
    names = [info.name for info in model.feature_info]
    assert len(set(names)) == len(names)
    for i, (fmap, info) in enumerate(zip(feats.maps, model.feature_info, strict=True)):
        assert fmap.shape == (2, info.channels, size // info.stride, size // info.stride), (name, info)
        if entry.family == "cifar":
            assert torch.equal(hooked[i], fmap), f"{name}: map {i} is not the output of {info.name}"
    strides = [info.stride for info in model.feature_info]
    assert strides == sorted(strides), "maps must go shallow → deep"
    if name in DESIGN_MAPS:
        maps, vector = DESIGN_MAPS[name]
        assert [(i.channels, 32 // i.stride) for i in model.feature_info] == maps
        assert model.num_features == vector


@pytest.mark.parametrize("name", CIFAR)
def test_other_input_size(name, cached_model):
    """No CIFAR model hard-wires 32×32: pooling is global."""
    model = cached_model(name).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, 3, 64, 64))
    assert feats.logits.shape == (1, 10)
    for fmap, info in zip(feats.maps, model.feature_info, strict=True):
        assert fmap.shape[-2:] == (64 // info.stride, 64 // info.stride)


@pytest.mark.parametrize("name", ALL)
def test_gradients_reach_every_parameter(name, cached_model):
    model = cached_model(name).train()
    model.zero_grad(set_to_none=True)
    feats = model.forward_features(_input(name, 2))
    loss = F.cross_entropy(feats.logits, torch.tensor([1, 7])) + sum(m.square().mean() for m in feats.maps)
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
            or not p.grad.abs().sum() > 0]
    model.zero_grad(set_to_none=True)
    assert not dead, f"{name}: no gradient reaches {dead[:5]}"


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_model(name):
    outs = []
    for _ in range(2):
        torch.manual_seed(1234)
        model = create_model(name, num_classes=10).eval()
        with torch.no_grad():
            outs.append((model.state_dict(), model(_input(name, 2))))
    (sd_a, out_a), (sd_b, out_b) = outs
    assert sd_a.keys() == sd_b.keys()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a)
    assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("name", ALL)
def test_batch_one_matches_batch_three(name, cached_model):
    """Eval mode: each sample's output does not depend on the batch (no baked batch size)."""
    model = cached_model(name).eval()
    x = _input(name, 3)

    def close(a: torch.Tensor, b: torch.Tensor) -> None:
        # Fresh BN statistics let activations grow with depth (resnet110 reaches ~1e5):
        # tolerance relative to the tensor's scale, since summation order differs with batch.
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(1.0, b.abs().max().item()))

    with torch.no_grad():
        f3 = model.forward_features(x)
        for i in range(3):
            f1 = model.forward_features(x[i : i + 1])
            close(f1.logits, f3.logits[i : i + 1])
            close(f1.vector, f3.vector[i : i + 1])
            for m1, m3 in zip(f1.maps, f3.maps, strict=True):
                close(m1, m3[i : i + 1])
