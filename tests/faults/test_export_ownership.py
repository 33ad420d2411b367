"""One writer per run, export included: an export and a training (or two exports) never interleave, a
publish removes only files its own previous export made, and a killed export's leftovers are cleaned."""

import hashlib
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error, tiny_recipe

from mimkd_edge.cli import main
from mimkd_edge.engine.trainer import fit
from mimkd_edge.errors import UserError
from mimkd_edge.export import export_run
from mimkd_edge.rundir import RunDir, load_verified, owned, verified_export
from mimkd_edge.rundir.layout import owned_folder
from mimkd_edge.runtime.predict import deployed_artifact


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("held", ["run", "out"])
def test_export_is_refused_while_another_process_owns_the_run_or_the_folder(exported_run, tmp_path, held):
    out = tmp_path / "elsewhere" if held == "out" else RunDir(exported_run).export
    out.mkdir(exist_ok=True)
    before = _snapshot(out)
    with owned(exported_run) if held == "run" else owned_folder(out):  # a training; another export into `out`
        result = CliRunner().invoke(main, ["export", str(exported_run), "--onnx", "--exporter", "torchscript",
                                           "--out", str(out)])
    assert_one_line_error(result, "another process", "this run directory" if held == "run" else "this folder")
    assert _snapshot(out) == before


def test_training_is_refused_while_an_export_owns_the_run(exported_run):
    refused = []

    def train_meanwhile(message):
        if not refused:
            with pytest.raises(UserError, match=r"another process \(pid \d+\) is exporting") as e:
                fit(tiny_recipe(name="tiny", epochs=2), exported_run, resume=True)
            refused.append(str(e.value))

    export_run(exported_run, onnx=True, exporter="torchscript", progress=train_meanwhile)
    assert refused and "\n" not in refused[0]
    load_verified(RunDir(exported_run).export)  # the export that held the run is whole


def test_two_exports_exclude_each_other(exported_run):
    refused = []

    def export_meanwhile(message):
        if not refused:
            with pytest.raises(UserError, match="is exporting") as e:
                export_run(exported_run, onnx=True, exporter="torchscript", bake_normalisation=True)
            refused.append(str(e.value))

    export_run(exported_run, onnx=True, exporter="torchscript", progress=export_meanwhile)
    assert refused
    assert not load_verified(RunDir(exported_run).export).input["normalisation_baked"]


def test_publish_keeps_a_file_another_writer_made(exported_run):
    export = RunDir(exported_run).export
    export_run(exported_run, onnx=True, openvino=True, exporter="torchscript")
    (export / "model_fp32.xml").write_text("<net>someone else's model</net>")  # not what our export wrote
    export_run(exported_run, onnx=True, exporter="torchscript")
    assert (export / "model_fp32.xml").read_text() == "<net>someone else's model</net>"
    assert not (export / "model_fp32.bin").exists()  # ours, superseded: removed


def test_leftovers_of_a_killed_export_are_removed_by_the_next(exported_run):
    export = RunDir(exported_run).export
    (export / ".staging-abc123").mkdir()
    (export / ".staging-abc123" / "model_fp32.onnx").write_bytes(b"half written")
    (export / ".manifest.json.abc123.tmp").write_text("{")
    export_run(exported_run, onnx=True, exporter="torchscript")
    assert not list(export.glob(".staging-*")) and not list(export.glob(".*.tmp"))


_KILLED_MID_PUBLISH = """
import os, signal, sys
from mimkd_edge.export import export_run, pipeline
pipeline.write_manifest = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # after the artifacts, before it
export_run(sys.argv[1], onnx=True, exporter="torchscript", bake_normalisation=True)
"""


def test_a_kill_mid_publish_leaves_the_previous_export_usable_until_the_next_one(exported_run, tmp_path):
    export = RunDir(exported_run).export
    before = load_verified(export)
    p = subprocess.run([sys.executable, "-c", _KILLED_MID_PUBLISH, str(exported_run)], capture_output=True, check=False,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.returncode == -9, p.stderr.decode()
    with pytest.raises(UserError, match="export the run again"):
        load_verified(export)  # the folder itself is half new, half old ...
    folder, manifest = verified_export(export)  # ... and the export it replaced is whole beside it
    assert folder == export / ".previous" and manifest.to_dict() == before.to_dict()
    result = CliRunner().invoke(main, ["bench", str(exported_run), "--backend", "onnxruntime", "--precision", "fp32",
                                       "--iters", "3", "--warmup", "1", "--results", str(tmp_path / "b.csv")])
    assert result.exit_code == 0, result.output
    assert "previous" in " ".join(result.output.split())
    artifact, backend, _ = deployed_artifact(exported_run, "fp32")
    assert artifact.path == folder / "model_fp32.onnx" and backend == "onnxruntime"
    assert hashlib.sha256(artifact.model).hexdigest() == before.artifacts[0].files[0].sha256
    export_run(exported_run, onnx=True, exporter="torchscript")  # the next export completes the replacement
    assert verified_export(export)[0] == export and not (export / ".previous").exists()
    assert not list(export.glob(".staging-*")) and not list(export.glob(".*.tmp"))


def test_a_completed_export_leaves_no_previous_copy(exported_run):
    export_run(exported_run, onnx=True, exporter="torchscript", bake_normalisation=True)
    export = RunDir(exported_run).export
    assert not (export / ".previous").exists() and verified_export(export)[0] == export


_KILLED_AFTER_MANIFEST = """
import os, signal, sys
from mimkd_edge.export import export_run, pipeline
real = pipeline.write_manifest
def written_then_killed(*a, **k):
    real(*a, **k)
    os.kill(os.getpid(), signal.SIGKILL)  # the new export is whole; its .previous and old files are not yet gone
pipeline.write_manifest = written_then_killed
export_run(sys.argv[1], onnx=False, openvino=True, exporter="torchscript", bake_normalisation=True)
"""


def test_a_kill_after_the_manifest_leaves_the_new_export_in_use_and_the_next_drops_the_old_files(exported_run):
    export = RunDir(exported_run).export
    p = subprocess.run([sys.executable, "-c", _KILLED_AFTER_MANIFEST, str(exported_run)], capture_output=True,
                       check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.returncode == -9, p.stderr.decode()
    folder, manifest = verified_export(export)
    assert folder == export and manifest.input["normalisation_baked"]  # the whole new export, not the old .previous
    assert (export / "model_fp32.onnx").exists()  # the older export's file, which the new one does not list
    export_run(exported_run, onnx=False, openvino=True, exporter="torchscript")
    assert verified_export(export)[0] == export and not (export / ".previous").exists()
    assert not (export / "model_fp32.onnx").exists()  # removed with the older export it belonged to


def test_an_export_into_another_runs_export_folder_waits_for_its_own_export(exported_run):
    held = owned_folder(RunDir(exported_run).export)  # another run's export, --out this run's export/
    with held, pytest.raises(UserError, match="another process is exporting into this folder"):
        export_run(exported_run, onnx=True, exporter="torchscript")
