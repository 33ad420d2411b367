"""The path a user with their own images walks, end to end through the CLI, using only what `recipe init`
wrote: a gray 12×12 folder of class folders (no train/ or test/) → recipe init → train the teacher →
distil → export → bench → plot → predict on a device without torch."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from helpers import NO_TORCH_PREAMBLE, write_flat_folder
from mimkd_edge.cli import main
from mimkd_edge.report.plot import panel_name
from mimkd_edge.rundir.bench_results import read_csv

_NO_TORCH = NO_TORCH_PREAMBLE + """
from mimkd_edge.cli import main
from mimkd_edge.report.plot import panel_name
from mimkd_edge.rundir.bench_results import read_csv
main(sys.argv[1:])
"""


def _ok(result):
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_own_gray_folder_from_recipe_init_to_predict_without_torch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_flat_folder(tmp_path, train=12, test=3)
    cli = CliRunner()
    _ok(cli.invoke(main, ["recipe", "init", "digits", "--student", "conv4", "--method", "mimkd", "--epochs", "1"]))
    teacher, student = "recipes/digits/digits-teacher-resnet20.toml", "recipes/digits/digits-conv4-mimkd.toml"
    assert "(from data.root)" in _ok(cli.invoke(main, ["train", teacher]))
    _ok(cli.invoke(main, ["distill", student]))
    run = tmp_path / "runs" / "digits-conv4-mimkd"
    _ok(cli.invoke(main, ["export", str(run), "--onnx", "--openvino", "--exporter", "torchscript"]))
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["input"]["shape"] == ["batch", 1, 12, 12] and manifest["classes"] == ["k0", "k1", "k2"]
    _ok(cli.invoke(main, ["bench", str(run), "--backend", "onnxruntime,openvino", "--seconds", "0.05", "--warmup",
                          "2", "--throughput-batch", "0", "--shape", "static"]))
    _ok(cli.invoke(main, ["plot", "--out", "runs/tradeoff.png"]))
    assert (tmp_path / "runs" / "tradeoff.png").is_file()
    rows = read_csv(tmp_path / "runs" / "bench.csv")
    assert {r.data_name for r in rows} == {"digits"}  # the figure names the data set by its folder
    assert panel_name("imagefolder", [r.as_dict() for r in rows]) == "digits"
    for artifact in ("model_fp32.onnx", "model_fp32.xml"):
        done = subprocess.run([sys.executable, "-c", _NO_TORCH, "predict", str(run / "export" / artifact),
                               "digits", "--json"], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout)
        assert report["images"] == 45 and {t["label"] for p in report["predictions"] for t in p["top"]} == \
            {"k0", "k1", "k2"}
