"""ImageNet models: torchvision's networks behind the same feature API (family "imagenet", 224×224).

Each model wraps `torchvision.models.feature_extraction.create_feature_extractor` around a
torchvision network, stored as `body`; the FX graph returns the maps, the pooled vector and the
logits in one pass. Map names are `body.<torchvision module path>`; the extractor keeps
torchvision's module hierarchy, so parameter names (and state dicts, after stripping `body.`)
match torchvision's. The map containers (e.g. `body.layer1`) hold the stage's parameters, but
the graph calls their leaf modules, so a forward hook on a container does not fire.

Maps mirror the CIFAR zoo: the stem's output, then the end of each stage (stride 4 → 32):
- tv_resnet18/34/50: `maxpool` (64 @ /4), `layer1..layer4`;
- tv_shufflenet_v2_x1_0: `maxpool` (24 @ /4), `stage2..stage4` (116/232/464 @ /8, /16, /32);
- tv_mobilenet_v2: `features.0` (32 @ /2), `features.3` (24 @ /4), `features.6` (32 @ /8),
  `features.13` (96 @ /16), `features.17` (320 @ /32), i.e. the same block groups as the CIFAR one.
Maps are whatever torchvision's module outputs are: post-ReLU for ResNet and ShuffleNet, linear
bottleneck outputs for MobileNetV2 (post-ReLU6 for its stem).

Export: torchvision's ShuffleNetV2 splits channels with `chunk`, which has broken ONNX exports;
the traced graphs here replace every `chunk` by slices (same values, see `_chunk_by_slicing`).
Its channel shuffle reads the batch size through `x.size()`, which the FX graph computes at run
time (not a constant). All models take any input size of at least 32×32.

`pretrained=True` loads torchvision's ImageNet weights (its weights enum, `DEFAULT`) from the
torch hub cache, downloading if needed; offline, put the file in `<torch hub dir>/checkpoints/`.
With `num_classes != 1000` the backbone is loaded and the classifier replaced (fresh init).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .features import FeatureInfo, FeatureModel, Features
from .registry import register_model


def _chunk_by_slicing(x: torch.Tensor, chunks: int, dim: int = 0) -> tuple[torch.Tensor, ...]:
    """`torch.chunk` with static slices: ceil(size / chunks) per piece, the last one smaller."""
    size = x.shape[dim]
    step = -(-size // chunks)
    return tuple(x.narrow(dim, start, min(step, size - start)) for start in range(0, size, step))


def _replace_chunk(body: nn.Module) -> None:
    graphs = [getattr(body, "train_graph", None), getattr(body, "eval_graph", None)]
    for graph in [g for g in graphs if g is not None] or [body.graph]:
        for node in graph.nodes:
            if node.op == "call_method" and node.target == "chunk":
                node.op, node.target = "call_function", _chunk_by_slicing
            elif node.op == "call_function" and node.target is torch.chunk:
                node.target = _chunk_by_slicing
        graph.lint()
    # Recompile the active graph; a DualGraphModule recompiles the other one when it swaps on train/eval.
    body.graph = body.graph


class TorchvisionFeatures(FeatureModel):
    """A torchvision classifier as a FeatureModel via an FX feature extractor."""

    input_size = 224

    def __init__(self, net: nn.Module, maps: list[tuple[str, int, int]], vector_node: str, logits_node: str,
                 num_features: int, num_classes: int):
        from torchvision.models.feature_extraction import create_feature_extractor

        super().__init__()
        nodes = {name: f"map{i}" for i, (name, _, _) in enumerate(maps)}
        nodes[vector_node] = "vector"
        nodes[logits_node] = "logits"
        self.body = create_feature_extractor(net, return_nodes=nodes)
        _replace_chunk(self.body)
        self._map_keys = [f"map{i}" for i in range(len(maps))]
        self.feature_info = tuple(FeatureInfo(c, s, f"body.{name}") for name, c, s in maps)
        self.num_features = num_features
        self.num_classes = num_classes

    def forward_features(self, x: torch.Tensor) -> Features:
        out = self.body(x)
        return Features(out["logits"], [out[k] for k in self._map_keys], out["vector"])


def _load_pretrained(net: nn.Module, weights) -> None:
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, HTTPError, socket errors, OSError …
        from torch.hub import get_dir

        filename = weights.url.rsplit("/", 1)[-1]
        raise RuntimeError(
            f"could not load torchvision weights {weights} from {weights.url}: this machine appears to be "
            f"offline (or the download failed: {exc}). Download {filename} elsewhere and place it in "
            f"{get_dir()}/checkpoints/, or create the model with pretrained=False."
        ) from exc
    net.load_state_dict(state)


def _build(builder: Callable[..., nn.Module], weights_enum, num_classes: int, pretrained: bool,
           classifier: str) -> nn.Module:
    """torchvision network; with `pretrained` load its 1000-class weights, then swap the
    classifier (attribute path `classifier`, a Linear) when `num_classes` differs."""
    if not pretrained:
        return builder(weights=None, num_classes=num_classes)
    net = builder(weights=None, num_classes=1000)
    _load_pretrained(net, weights_enum.DEFAULT)
    if num_classes != 1000:
        parent_name, _, attr = classifier.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        old = getattr(parent, attr)
        setattr(parent, attr, nn.Linear(old.in_features, num_classes))
    return net


def _resnet(arch: str, num_classes: int, pretrained: bool) -> TorchvisionFeatures:
    import torchvision.models as tvm

    weights = {"resnet18": tvm.ResNet18_Weights, "resnet34": tvm.ResNet34_Weights,
               "resnet50": tvm.ResNet50_Weights}[arch]
    net = _build(getattr(tvm, arch), weights, num_classes, pretrained, "fc")
    e = 4 if arch == "resnet50" else 1
    maps = [("maxpool", 64, 4), ("layer1", 64 * e, 4), ("layer2", 128 * e, 8), ("layer3", 256 * e, 16),
            ("layer4", 512 * e, 32)]
    return TorchvisionFeatures(net, maps, "flatten", "fc", 512 * e, num_classes)


@register_model(family="imagenet", input_size=224)
def tv_resnet18(num_classes: int = 1000, pretrained: bool = False) -> TorchvisionFeatures:
    return _resnet("resnet18", num_classes, pretrained)


@register_model(family="imagenet", input_size=224)
def tv_resnet34(num_classes: int = 1000, pretrained: bool = False) -> TorchvisionFeatures:
    return _resnet("resnet34", num_classes, pretrained)


@register_model(family="imagenet", input_size=224)
def tv_resnet50(num_classes: int = 1000, pretrained: bool = False) -> TorchvisionFeatures:
    return _resnet("resnet50", num_classes, pretrained)


@register_model(family="imagenet", input_size=224)
def tv_shufflenet_v2_x1_0(num_classes: int = 1000, pretrained: bool = False) -> TorchvisionFeatures:
    import torchvision.models as tvm

    net = _build(tvm.shufflenet_v2_x1_0, tvm.ShuffleNet_V2_X1_0_Weights, num_classes, pretrained, "fc")
    maps = [("maxpool", 24, 4), ("stage2", 116, 8), ("stage3", 232, 16), ("stage4", 464, 32)]
    return TorchvisionFeatures(net, maps, "mean", "fc", 1024, num_classes)


@register_model(family="imagenet", input_size=224)
def tv_mobilenet_v2(num_classes: int = 1000, pretrained: bool = False) -> TorchvisionFeatures:
    import torchvision.models as tvm

    net = _build(tvm.mobilenet_v2, tvm.MobileNet_V2_Weights, num_classes, pretrained, "classifier.1")
    maps = [("features.0", 32, 2), ("features.3", 24, 4), ("features.6", 32, 8), ("features.13", 96, 16),
            ("features.17", 320, 32)]
    return TorchvisionFeatures(net, maps, "flatten", "classifier", 1280, num_classes)
