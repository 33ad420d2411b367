"""RepDistiller's checkpoints import into our models: its key names (facts about the public model
files, written here by hand with their shapes at 100 classes) land on our keys of the same shape, and
a checkpoint file round-trips through `mimkd-edge teacher import`."""

import argparse
import gzip
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import assert_one_line_error

from mimkd_edge.cli import main
from mimkd_edge.models import create_model
from mimkd_edge.models.repdistiller import REPDISTILLER, from_repdistiller
from mimkd_edge.rundir import load_run, read_summary

# RepDistiller key → shape, per model; between them every renaming rule of every family is exercised.
REFERENCE_KEYS = {
    "resnet32x4": {"conv1.weight": (32, 3, 3, 3), "bn1.weight": (32,), "layer1.0.downsample.0.weight": (64, 32, 1, 1),
                   "layer3.4.conv2.weight": (256, 256, 3, 3), "fc.weight": (100, 256)},
    "resnet56": {"conv1.weight": (16, 3, 3, 3), "bn1.weight": (16,), "layer2.0.downsample.0.weight": (32, 16, 1, 1),
                 "layer3.8.conv2.weight": (64, 64, 3, 3), "fc.weight": (100, 64)},
    "resnet50": {"conv1.weight": (64, 3, 3, 3), "bn1.weight": (64,), "linear.weight": (100, 2048),
                 "layer4.2.conv3.weight": (2048, 512, 1, 1), "layer1.0.shortcut.0.weight": (256, 64, 1, 1)},
    "wrn_40_2": {"conv1.weight": (16, 3, 3, 3), "bn1.weight": (128,), "block1.layer.0.bn1.weight": (16,),
                 "block1.layer.0.convShortcut.weight": (32, 16, 1, 1), "block3.layer.5.conv2.weight": (128, 128, 3, 3),
                 "fc.weight": (100, 128)},
    "vgg13": {"classifier.weight": (100, 512), "block4.3.weight": (512, 512, 3, 3), "block0.0.weight": (64, 3, 3, 3)},
    "mobilenetv2": {"conv1.0.weight": (16, 3, 3, 3), "conv2.0.weight": (1280, 160, 1, 1),
                    "classifier.0.weight": (100, 1280)},
    "shufflenetv1": {"conv1.weight": (24, 3, 1, 1), "bn1.weight": (24,), "linear.weight": (100, 960),
                     "layer3.3.conv3.weight": (960, 80, 1, 1)},
    "shufflenetv2": {"conv1.weight": (24, 3, 1, 1), "bn1.weight": (24,), "conv2.weight": (1024, 464, 1, 1),
                     "bn2.weight": (1024,), "linear.weight": (100, 1024), "layer1.0.conv1.weight": (24, 1, 3, 3),
                     "layer1.0.bn1.weight": (24,), "layer1.0.conv2.weight": (58, 24, 1, 1),
                     "layer1.0.bn2.weight": (58,), "layer1.0.conv3.weight": (58, 24, 1, 1),
                     "layer1.0.bn3.weight": (58,), "layer1.0.conv4.weight": (58, 1, 3, 3),
                     "layer1.0.bn4.weight": (58,), "layer1.0.conv5.weight": (58, 58, 1, 1),
                     "layer1.0.bn5.weight": (58,), "layer1.1.conv1.weight": (58, 58, 1, 1),
                     "layer1.1.bn1.weight": (58,), "layer1.1.conv2.weight": (58, 1, 3, 3),
                     "layer1.1.bn2.weight": (58,), "layer1.1.conv3.weight": (58, 58, 1, 1),
                     "layer1.1.bn3.weight": (58,)},
}


# Every key and shape of RepDistiller's 22 counterpart models at 100 classes (its state_dict layouts:
# facts about the public model files, recorded once from a re-creation of its modules, no code kept).
RECORDED = json.loads(gzip.decompress((Path(__file__).parent / "data" / "repdistiller_keys.json.gz").read_bytes()))


@pytest.mark.parametrize("model", sorted(REPDISTILLER))
def test_every_counterparts_full_reference_layout_loads_strictly_into_ours(model):
    reference = {k: torch.zeros(shape) for k, shape in RECORDED["models"][REPDISTILLER[model][0]]}
    ours = create_model(model, num_classes=100)
    renamed = from_repdistiller(model, reference)
    assert len(renamed) == len(reference)
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    ours.load_state_dict(renamed, strict=True)


@pytest.mark.parametrize("model", sorted(REFERENCE_KEYS))
def test_reference_keys_land_on_our_keys_of_the_same_shape(model):
    ours = {k: tuple(v.shape) for k, v in create_model(model, num_classes=100).state_dict().items()}
    facts = {k: torch.empty(shape) for k, shape in REFERENCE_KEYS[model].items()}
    renamed = from_repdistiller(model, facts)
    assert len(renamed) == len(facts)  # no two reference keys collapse into one
    assert {k: tuple(v.shape) for k, v in renamed.items()} == {k: ours.get(k) for k in renamed}


def _reference_layout_resnet(state: dict) -> dict:
    """Our CIFAR-ResNet state dict under RepDistiller's names (its stem conv1/bn1, shortcut downsample)."""
    out = {}
    for name, v in state.items():
        k = name.replace("stem.0.", "conv1.", 1) if name.startswith("stem.0.") else name
        k = k.replace("stem.1.", "bn1.", 1) if k.startswith("stem.1.") else k
        out["module." + k.replace(".shortcut.", ".downsample.")] = v  # saved from DataParallel, as some are
    return out


def _import(f, out):
    return CliRunner().invoke(main, ["teacher", "import", str(f), "--model", "resnet8x4", "--out", str(out)])


def test_a_checkpoint_file_imports_as_a_run_with_the_same_logits(tmp_path):
    torch.manual_seed(0)
    reference = create_model("resnet8x4", num_classes=100).eval()
    for m in reference.modules():  # BN statistics that matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    f = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": _reference_layout_resnet(reference.state_dict()),
                "accuracy": torch.tensor(73.1), "optimizer": {}}, f)
    result = _import(f, tmp_path / "T")
    assert result.exit_code == 0, result.output
    loaded = load_run(tmp_path / "T")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), reference(x))
    s = read_summary(tmp_path / "T")
    assert s.provenance["file_says"] == {"epoch": 240.0, "accuracy": pytest.approx(73.1)} and s.epochs == 240
    assert s.final_test_acc is None and "not measured" in s.provenance["test_accuracy"]  # no CIFAR-100 here
    again = _import(f, tmp_path / "T")
    assert again.exit_code == 2 and "already holds a run" in again.output


def test_the_wrong_model_is_one_line_naming_what_did_not_fit(tmp_path):
    f = tmp_path / "r20.pth"
    torch.save({"model": _reference_layout_resnet(create_model("resnet20", num_classes=100).state_dict())}, f)
    result = _import(f, tmp_path / "T")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "r20.pth" in result.output and "do not fit model resnet8x4" in result.output


def test_a_file_that_pickles_objects_is_refused_without_running_them(tmp_path):
    f = tmp_path / "resnet8x4_last.pth"
    torch.save({"opt": argparse.Namespace(model="resnet8x4"), "model": {}}, f)
    result = CliRunner().invoke(main, ["teacher", "import", str(f), "--model", "resnet8x4"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "tensors only" in result.output


def test_every_counterpart_is_one_of_our_models():
    from mimkd_edge.models import list_models

    assert set(REPDISTILLER) <= set(list_models())


def test_data_with_another_class_count_is_refused_when_named(tmp_path):
    from helpers import write_image_folder

    f = tmp_path / "ckpt.pth"
    torch.save({"model": _reference_layout_resnet(create_model("resnet8x4", num_classes=100).state_dict())}, f)
    folder = write_image_folder(tmp_path / "three", classes=3, size=32)
    args = ["teacher", "import", str(f), "--model", "resnet8x4", "--out", str(tmp_path / "T"),
            "--data-dir", str(folder)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, "three", "an image folder of 3 classes", "CIFAR-100")
    assert not (tmp_path / "T" / "model.safetensors").exists()


def test_a_torchvision_weights_file_imports_for_our_tv_model(tmp_path):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()  # torchvision's own layout, as its .pth files
    f = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), f)
    args = ["teacher", "import", str(f), "--model", "tv_resnet18", "--out", str(tmp_path / "T")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    loaded = load_run(tmp_path / "T")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), reference(x), rtol=0, atol=1e-5)
    s = read_summary(tmp_path / "T")
    assert s.provenance["format"] == "torchvision" and s.data.image_size == 224 and s.final_test_acc is None
