"""Nothing is measured or reported from an artifact that is not the file that was proven."""

import json

import pytest
import torch
from click.testing import CliRunner

from helpers import assert_one_line_error
from mimkd_edge.cli import main
from mimkd_edge.errors import UserError
from mimkd_edge.runtime.bench import BenchConfig, bench_runs


def _bench(run, tmp_path):
    return CliRunner().invoke(main, ["bench", str(run), "--cpu", "--backend", "onnxruntime", "--precision", "fp32",
                                     "--iters", "3", "--warmup", "1", "--results", str(tmp_path / "b.csv")])


def _replace_with_another_model(onnx):
    """A valid ONNX model of the same shape (an untrained Conv-4) under the proven file's name."""
    from mimkd_edge.export.onnx_export import export_onnx
    from mimkd_edge.models import create_model

    torch.manual_seed(7)
    export_onnx(create_model("conv4", num_classes=4).eval(), onnx, input_size=32, exporter="torchscript")


def test_a_replaced_artifact_is_refused(exported_run, tmp_path):
    _replace_with_another_model(exported_run / "export" / "model_fp32.onnx")
    assert_one_line_error(_bench(exported_run, tmp_path), "model_fp32.onnx", "differs from the manifest")
    assert not (tmp_path / "b.csv").exists()


def test_zeroed_hashes_are_refused(exported_run, tmp_path):
    path = exported_run / "export" / "manifest.json"
    m = json.loads(path.read_text())
    for a in m["artifacts"]:
        a["sha256"] = "0" * 64
        for f in a["files"]:
            f["sha256"] = "0" * 64
    path.write_text(json.dumps(m))
    assert_one_line_error(_bench(exported_run, tmp_path), "model_fp32.onnx", "differs from the manifest")


@pytest.mark.parametrize("manifest, expected", [
    ([], "expected a JSON object"),
    ({"artifacts": [{"name": "x"}]}, "artifacts[0] needs a `path`"),
    ({"artifacts": [{"path": "model_fp32.onnx"}]}, "needs `files`"),
    ({"artifacts": [{"path": "../../summary.json",
                     "files": [{"path": "../../summary.json", "size": 1, "sha256": "0"}]}]},
     "outside the export folder"),
])
def test_malformed_manifests_are_one_line(exported_run, tmp_path, manifest, expected):
    (exported_run / "export" / "manifest.json").write_text(json.dumps(manifest))
    assert_one_line_error(_bench(exported_run, tmp_path), expected)


def test_the_library_refuses_too(exported_run):
    _replace_with_another_model(exported_run / "export" / "model_fp32.onnx")
    with pytest.raises(UserError, match="differs from the manifest"):
        bench_runs([exported_run], BenchConfig(backends=("onnxruntime",), precisions=("fp32",), iters=3, warmup=1))
