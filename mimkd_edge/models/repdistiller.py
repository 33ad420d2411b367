"""RepDistiller's CIFAR checkpoints → our models: the key names differ, the tensors do not.

RepDistiller (HobbitLong/RepDistiller) published the CIFAR-100 teachers the field distils from
(`ckpt_epoch_240.pth` of wrn_40_2, resnet56, resnet110, resnet32x4, vgg13, ResNet50). Its modules
name their parts differently from ours (its stem is `conv1`/`bn1`, ours `stem.0`/`stem.1`; its
shortcut is `downsample`, ours `shortcut`; ...); each tensor has the same shape and meaning. The rules
below rename its keys into ours, in order, per family. Checked on every model of the table against a
re-creation of RepDistiller's modules: with the renamed weights (BN statistics randomised) our forward
gives its logits, max |Δ| 2e-6 in float32 at 32×32. At other input sizes the two differ: RepDistiller
pools with fixed windows, we pool globally.
"""

from __future__ import annotations

import re

Rules = tuple[tuple[str, str], ...]

_RESNET: Rules = ((r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."), (r"\.downsample\.", ".shortcut."))
_RESNET50: Rules = ((r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."), (r"^linear\.", "fc."))
_WRN: Rules = ((r"^conv1\.", "stem."), (r"^bn1\.", "head.0."), (r"^block(\d)\.layer\.", r"layer\1."),
               (r"\.convShortcut\.", ".shortcut."))
_VGG: Rules = ((r"^classifier\.", "fc."),)
_MOBILENETV2: Rules = ((r"^conv1\.", "stem."), (r"^conv2\.", "head."), (r"^classifier\.0\.", "fc."))
_SHUFFLENETV1: Rules = ((r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."), (r"^linear\.", "fc."))
# ShuffleNetV2: the first unit of a stage downsamples (two branches: left, right); the others split
# the channels and transform one half (branch).
_SHUFFLENETV2_DOWN = {"conv1": "left.0", "bn1": "left.1", "conv2": "left.2", "bn2": "left.3", "conv3": "right.0",
                      "bn3": "right.1", "conv4": "right.3", "bn4": "right.4", "conv5": "right.5", "bn5": "right.6"}
_SHUFFLENETV2_BASIC = {"conv1": "branch.0", "bn1": "branch.1", "conv2": "branch.3", "bn2": "branch.4",
                       "conv3": "branch.5", "bn3": "branch.6"}
_SHUFFLENETV2: Rules = (
    (r"^conv1\.", "stem.0."), (r"^bn1\.", "stem.1."), (r"^conv2\.", "head.0."), (r"^bn2\.", "head.1."),
    (r"^linear\.", "fc."),
    *((rf"^(layer\d\.0)\.{k}\.", rf"\1.{v}.") for k, v in _SHUFFLENETV2_DOWN.items()),
    *((rf"^(layer\d\.[1-9]\d*)\.{k}\.", rf"\1.{v}.") for k, v in _SHUFFLENETV2_BASIC.items()),
)

# our model name → (RepDistiller's model_dict name, renaming rules)
REPDISTILLER: dict[str, tuple[str, Rules]] = {
    **{n: (n, _RESNET) for n in ("resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                                 "resnet8x4", "resnet32x4")},
    "resnet50": ("ResNet50", _RESNET50),
    **{n: (n, _WRN) for n in ("wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2")},
    **{n: (n, _VGG) for n in ("vgg8", "vgg11", "vgg13", "vgg16", "vgg19")},
    "mobilenetv2": ("MobileNetV2", _MOBILENETV2),
    "shufflenetv1": ("ShuffleV1", _SHUFFLENETV1),
    "shufflenetv2": ("ShuffleV2", _SHUFFLENETV2),
}


def rename_key(key: str, rules: Rules) -> str:
    """Apply each rule once, in order (a key may match several: `layer1.0.bn1.` in ShuffleNetV2 must
    not match the stem's `^bn1\\.`, which the anchors prevent)."""
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def from_repdistiller(model: str, state: dict) -> dict:
    """RepDistiller's state dict of `model` (our name) with our key names; a DataParallel `module.`
    prefix is dropped. KeyError when `model` has no RepDistiller counterpart."""
    _, rules = REPDISTILLER[model]
    return {rename_key(k.removeprefix("module."), rules): v for k, v in state.items()}
