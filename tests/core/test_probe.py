"""The linear probe (paper's Table 3 protocol): right on data of known answer, deterministic, and
end to end on a run probed with a data set of another geometry."""

import json

import torch
from click.testing import CliRunner

from mimkd_edge.cli import main
from mimkd_edge.engine.probe import linear_probe
from mimkd_edge.engine.trainer import fit
from mimkd_edge.rundir import RunDir
from mimkd_edge.rundir.probe_results import read_probe_results

from helpers import tiny_recipe, write_brightness_folder


def _clusters(n, classes, dim, spread, seed):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g) * 4
    y = torch.arange(n) % classes
    return centres[y] + spread * torch.randn(n, dim, generator=g), y


def test_separable_features_are_probed_perfectly_and_noise_at_chance():
    x, y = _clusters(600, 3, 16, 0.5, seed=0)
    result = linear_probe(x[:450], y[:450], x[450:], y[450:], 3)
    assert result["test_accuracy"] == 100.0
    g = torch.Generator().manual_seed(1)
    noise, labels = torch.randn(600, 16, generator=g), torch.randint(0, 3, (600,), generator=g)
    chance = linear_probe(noise[:450], labels[:450], noise[450:], labels[450:], 3)
    assert chance["test_accuracy"] < 50.0  # 3 classes: about 33 %


def test_the_probe_is_deterministic():
    x, y = _clusters(300, 4, 8, 3.0, seed=2)  # overlapping: an answer that depends on the fit
    a = linear_probe(x[:240], y[:240], x[240:], y[240:], 4)
    b = linear_probe(x[:240], y[:240], x[240:], y[240:], 4)
    assert a == b and 25.0 < a["test_accuracy"] < 100.0


def test_probe_cli_reads_other_geometry_and_stores_the_result(tmp_path):
    run = tmp_path / "run"
    fit(tiny_recipe(name="probed"), run)  # an RGB 32×32 student
    write_brightness_folder(tmp_path / "gray", channels=1, size=12, train=20, test=8, prefix="c")
    args = ["probe", str(run), "--data", str(tmp_path / "gray"), "--threads", "1"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    (result,) = read_probe_results(run)
    assert result.geometry == [3, 32, 32] and (result.train_images, result.test_images, result.classes) == (60, 24, 3)
    assert json.loads(RunDir(run).probe.read_text())["schema"] == 1
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and read_probe_results(run)[0].test_accuracy == result.test_accuracy
    assert f"{result.test_accuracy:.2f}" in first.output


def test_the_probe_says_its_resize_once_and_records_both_geometries(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        fit(tiny_recipe(name=run.name), run)  # RGB 32×32 students
    write_brightness_folder(tmp_path / "gray", channels=1, size=12, train=20, test=8, prefix="c")
    result = CliRunner().invoke(main, ["probe", *map(str, runs), "--data", str(tmp_path / "gray"), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("resized (bilinear)") == 1 and "12×12" in result.output  # two runs, said once
    (probed,) = read_probe_results(runs[0])
    assert probed.source_geometry == [1, 12, 12] and probed.geometry == [3, 32, 32]
