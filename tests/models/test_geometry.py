"""Every model of the zoo takes 1- and 3-channel images at sizes from 28 up (timm's `in_chans`)."""

import pytest
import torch
from click.testing import CliRunner
from helpers import tiny_table

from mimkd_edge.cli import main
from mimkd_edge.models import create_model, list_models, map_shapes
from mimkd_edge.recipe import dumps_toml


@pytest.mark.parametrize("name", list_models())
def test_every_model_at_one_and_three_channels(name):
    for chans, size in ((1, 28), (3, 64)):
        model = create_model(name, num_classes=5, in_chans=chans).eval()
        assert model.in_chans == chans and map_shapes(model, size)
        with torch.no_grad():
            assert model(torch.zeros(2, chans, size, size)).shape == (2, 5)


def test_a_one_channel_stem_keeps_the_rgb_response_to_gray():
    torch.manual_seed(0)
    rgb = create_model("resnet20", num_classes=5).eval()
    torch.manual_seed(0)
    gray = create_model("resnet20", num_classes=5, in_chans=1).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():  # same init: a gray image copied to RGB gives the same logits
        torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), atol=1e-4, rtol=1e-4)


def test_too_small_for_the_architecture_is_one_line(tmp_path):
    table = tiny_table(model="conv4_mp")
    table["data"]["image_size"] = 4  # four 2×2 max-pools need at least 16 pixels
    path = tmp_path / "r.toml"
    path.write_text(dumps_toml(table))
    r = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "student.model: conv4_mp cannot take 3×4×4 images" in " ".join(r.output.split())
