"""An export older than the run's weights or recipe is refused, in one line saying to re-export, by
bench, the deployment choice and `predict RUN`; never measured or deployed beside the new weights."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error, tiny_recipe
from PIL import Image

from mimkd_edge.cli import main
from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import UserError
from mimkd_edge.export import export_run
from mimkd_edge.rundir import RunDir
from mimkd_edge.runtime.bench import BenchConfig, bench_runs
from mimkd_edge.runtime.predict import deployed_artifact

CONFIG = BenchConfig(backends=("onnxruntime",), precisions=("fp32",), iters=3, warmup=1, sgemm=False)


def _train_one_more_epoch(run):
    fit(tiny_recipe(name="tiny", epochs=2), run, resume=True)  # train --resume --set train.epochs=2


def _edit_recipe(run):
    path = RunDir(run).recipe
    path.write_text(path.read_text() + "\n# edited after the export\n")


def test_the_manifest_records_the_weights_and_recipe_it_was_exported_from(exported_run):
    from mimkd_edge.provenance import sha256_file

    manifest = json.loads(RunDir(exported_run).manifest.read_text())
    assert manifest["weights"]["sha256"] == sha256_file(RunDir(exported_run).weights)
    assert manifest["recipe"]["sha256"]


@pytest.mark.parametrize("change", [_train_one_more_epoch, _edit_recipe])
def test_bench_refuses_an_export_older_than_the_run(exported_run, tmp_path, change):
    change(exported_run)
    with pytest.raises(UserError, match="re-export") as e:
        bench_runs([exported_run], CONFIG, results=None)
    assert "\n" not in str(e.value)
    result = CliRunner().invoke(main, ["bench", str(exported_run), "--backend", "onnxruntime", "--precision", "fp32",
                                       "--iters", "3", "--warmup", "1", "--results", str(tmp_path / "b.csv")])
    assert_one_line_error(result, str(exported_run), "re-export")
    assert not (tmp_path / "b.csv").exists()


def test_the_deployment_choice_and_predict_refuse_a_stale_export(exported_run, tmp_path):
    bench_runs([exported_run], CONFIG, results=None)
    deployed_artifact(exported_run)  # chosen while current
    _train_one_more_epoch(exported_run)
    with pytest.raises(UserError, match="re-export"):
        deployed_artifact(exported_run)
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    assert_one_line_error(CliRunner().invoke(main, ["predict", str(exported_run), str(image)]), "re-export")


def test_a_new_export_is_current_again(exported_run):
    _train_one_more_epoch(exported_run)
    export_run(exported_run, onnx=True, exporter="torchscript")
    assert bench_runs([exported_run], CONFIG, results=None)
