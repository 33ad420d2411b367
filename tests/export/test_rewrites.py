"""Export-time rewrites (export/rewrites.py): same logits as the model as trained, fewer copies; the
model-specific ones asked of the model through its export hook (models/export_form.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import onnx
import pytest
import torch
from helpers import with_bn_statistics

from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import UserError
from mimkd_edge.export import ExportPlan, export_run
from mimkd_edge.export.onnx_export import export_onnx
from mimkd_edge.export.rewrites import ChannelPaddedConv, rewrite_for_export, rewrite_for_int8
from mimkd_edge.models import FeatureModel, create_model, list_models
from mimkd_edge.models.conv4 import Conv4
from mimkd_edge.models.export_form import ExportForm
from mimkd_edge.recipe import parse_recipe


def test_folded_graph_has_no_shuffle_and_no_batchnorm(tmp_path):
    model = with_bn_statistics("shufflenetv2_0_5")
    plain, folded = tmp_path / "plain.onnx", tmp_path / "folded.onnx"
    export_onnx(model, plain, input_size=32, exporter="torchscript")
    fold = rewrite_for_export(model, ("fold-channel-shuffle",)).module
    export_onnx(fold, folded, input_size=32, exporter="torchscript")
    ops = lambda p: [n.op_type for n in onnx.load(p).graph.node]  # noqa: E731
    assert ops(plain).count("Transpose") > 0 and "Transpose" not in ops(folded)
    assert "BatchNormalization" not in ops(folded)
    assert ops(folded).count("Conv") == ops(plain).count("Conv")  # the same convolutions, no extra MACs
    assert ops(folded).count("Reshape") <= 1  # the flatten before the classifier only


@pytest.mark.parametrize("name", ["conv4", "resnet8x4", "shufflenetv1"])
def test_models_without_a_rewrite_are_exported_as_they_are(name):
    model = create_model(name, num_classes=10)
    rewritten = rewrite_for_export(model)
    assert rewritten.module is model and rewritten.applied == ()


class _Doubled(FeatureModel):
    """A model that knows a faster form of itself (here: the same function, a new module)."""

    export_rewrites = ("first", "second")

    def forward(self, x):
        return 2 * x

    def export_form(self, rewrites):
        return ExportForm(_Doubled(), tuple(r for r in self.export_rewrites if r in rewrites))


def test_export_asks_the_model_for_its_form():
    model = _Doubled()
    form = rewrite_for_export(model)
    assert isinstance(form.module, _Doubled) and form.module is not model and form.applied == ("first", "second")
    assert rewrite_for_export(model, ("second",)).applied == ("second",)
    assert rewrite_for_export(model, ()).module is model


def test_export_knows_no_model_class():
    """export/ reaches the models through the hook's module only: no model class to dispatch on."""
    export = Path(__file__).resolve().parents[2] / "mimkd_edge" / "export"
    for path in export.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and "models" in (node.module or ""):
                assert node.module in ("models.export_form", "mimkd_edge.models.export_form"), (path, node.module)


def test_rewrites_can_be_chosen_one_by_one():
    model = create_model("shufflenetv2_0_5", num_classes=10)
    assert rewrite_for_export(model, ("fold-channel-shuffle",)).applied == ("fold-channel-shuffle",)
    assert rewrite_for_export(model, ()).module is model
    with pytest.raises(ValueError, match="unknown rewrites"):
        rewrite_for_export(model, ("fold-everything",))


def test_export_pipeline_proves_the_rewritten_graph_against_the_student(tmp_path):
    """`export` writes the folded graph by default (normalisation baked in front of it here), proves
    it against the student as trained, and says so in the manifest; --no-rewrite exports it as is."""
    table = {
        "name": "tiny-shuffle", "seed": 0,
        "data": {"dataset": "synthetic", "num_classes": 4, "synthetic_train": 64, "synthetic_test": 32},
        "student": {"model": "shufflenetv2_0_5"}, "method": {"name": "none"},
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "milestones": [1], "device": "cpu"},
    }
    before = torch.get_num_threads()
    try:
        fit(parse_recipe(table, "test"), tmp_path / "run")
    finally:
        torch.set_num_threads(before)
    folded = export_run(tmp_path / "run", out=tmp_path / "folded", onnx=True, exporter="torchscript",
                        bake_normalisation=True, int8=True, calib=16)
    plain = export_run(tmp_path / "run", out=tmp_path / "plain", onnx=True, exporter="torchscript", rewrite=False,
                       int8=True, calib=16)
    assert folded.complete and folded.manifest.rewrites == ["fold-channel-shuffle", "align-branch-width"]
    assert plain.complete and plain.manifest.rewrites == []
    int8 = [m.artifacts[1] for m in (folded.manifest, plain.manifest)]
    assert [a.name for a in int8] == ["onnx-int8", "onnx-int8"]
    assert int8[0].quantisation["rewrites"] == ["fold-channel-shuffle", "align-branch-width", "pad-input-channels"]
    assert int8[1].quantisation["rewrites"] == []
    graph = onnx.load(tmp_path / "folded" / "model_int8.onnx").graph
    assert "Pad" in [n.op_type for n in graph.node] and graph.input[0].type.tensor_type.shape.dim[1].dim_value == 3
    assert sorted(p.name for p in (tmp_path / "folded").iterdir()) == ["manifest.json", "model_fp32.onnx",
                                                                      "model_int8.onnx"]  # the source not published
    assert folded.manifest.artifacts[0].parity["max_abs_diff"] <= 1e-4
    ops = [n.op_type for n in onnx.load(tmp_path / "folded" / "model_fp32.onnx").graph.node]
    assert "Transpose" not in ops
    fold = export_run(tmp_path / "run", out=tmp_path / "fold", onnx=True, exporter="torchscript", int8=True, calib=16,
                      rewrites=("fold-channel-shuffle",))  # one rewrite alone, and no INT8 padding
    assert fold.complete and fold.manifest.rewrites == ["fold-channel-shuffle"]
    assert fold.manifest.artifacts[1].quantisation["rewrites"] == ["fold-channel-shuffle"]


def test_a_plan_names_its_rewrites_only_with_rewrite_on():
    plan = ExportPlan(int8=True, rewrites=["fold-channel-shuffle", "pad-input-channels"])
    assert plan.rewrites == ("fold-channel-shuffle", "pad-input-channels") and plan.pad_int8_input
    assert plan.model_rewrites == ("fold-channel-shuffle",) and ExportPlan().model_rewrites is None
    assert not ExportPlan(int8=True, rewrites=()).pad_int8_input and ExportPlan(int8=True).pad_int8_input
    with pytest.raises(UserError, match="rewrites: naming the rewrites to apply needs rewrite on"):
        ExportPlan(rewrite=False, rewrites=())


@pytest.mark.parametrize("name", list_models())
@torch.no_grad()
def test_int8_graph_pads_the_image_to_four_channels_with_the_same_logits(name):
    model = with_bn_statistics(name)
    padded = rewrite_for_int8(model)
    assert padded.applied == ("pad-input-channels",) and padded.module is not model
    convs = [m for m in padded.module.modules() if isinstance(m, ChannelPaddedConv)]
    assert len(convs) == 1 and convs[0].conv.in_channels == 4 and not convs[0].conv.weight[:, 3:].any()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    ref = model(x)
    assert float((padded.module(x) - ref).abs().max()) <= 1e-5 * max(1.0, float(ref.abs().max()))


def test_int8_padding_leaves_aligned_inputs_and_the_original_alone():
    model = create_model("conv4", num_classes=10).eval()
    before = model.blocks[0][0].weight.clone()
    rewrite_for_int8(model)
    assert model.blocks[0][0].in_channels == 3 and torch.equal(model.blocks[0][0].weight, before)
    gray = Conv4(num_classes=10)
    gray.blocks[0][0] = torch.nn.Conv2d(4, 64, 3, padding=1, bias=False)  # a 4-channel input: nothing to pad
    assert rewrite_for_int8(gray.eval(), input_channels=4).applied == ()
