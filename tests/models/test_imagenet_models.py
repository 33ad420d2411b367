"""The torchvision-backed ImageNet models: registry, torchvision parity, chunk rewrite, pretrained."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from mimkd_edge.models import create_model, list_models, model_entry

TV = ["tv_resnet18", "tv_resnet34", "tv_resnet50", "tv_shufflenet_v2_x1_0", "tv_mobilenet_v2"]


def test_registered_as_imagenet():
    for name in TV:
        assert name in list_models()
        entry = model_entry(name)
        assert (entry.family, entry.input_size) == ("imagenet", 224)
    assert all(model_entry(n).family == "cifar" for n in list_models() if not n.startswith("tv_"))


def test_shufflenet_chunk_replaced_and_matches_torchvision():
    import torchvision.models as tvm

    torch.manual_seed(0)
    model = create_model("tv_shufflenet_v2_x1_0", num_classes=10)
    for graph in (model.body.train_graph, model.body.eval_graph):
        assert not [n for n in graph.nodes if n.target in ("chunk", torch.chunk)]
    model.eval()
    assert ".chunk(" not in model.body.code and "_chunk_by_slicing" in model.body.code
    ref = tvm.shufflenet_v2_x1_0(num_classes=10)
    state = {k.removeprefix("body."): v for k, v in model.state_dict().items()}
    ref.load_state_dict(state)  # same parameter names as torchvision
    ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


def _offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_pretrained_offline_is_a_clear_error(monkeypatch):
    import torchvision.models._api as tv_api

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", _offline)
    with pytest.raises(RuntimeError, match="offline") as info:
        create_model("tv_resnet18", num_classes=100, pretrained=True)
    assert "checkpoints" in str(info.value)


def test_pretrained_loads_backbone_and_replaces_classifier(monkeypatch):
    import torchvision.models as tvm
    import torchvision.models._api as tv_api

    torch.manual_seed(1)
    source = tvm.mobilenet_v2(num_classes=1000).state_dict()
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", lambda url, *a, **k: source)
    model = create_model("tv_mobilenet_v2", num_classes=7, pretrained=True)
    state = model.state_dict()
    assert torch.equal(state["body.features.0.0.weight"], source["features.0.0.weight"])
    assert state["body.classifier.1.weight"].shape == (7, 1280)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 7)
