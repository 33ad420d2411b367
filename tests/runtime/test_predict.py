"""`predict` runs an exported artifact from the artifact alone: same inputs as training, same
predictions as the bench's accuracy path, and no torch needed."""

import json
import re
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import NO_TORCH_PREAMBLE, write_brightness_folder
from mimkd_edge.cli import main
from mimkd_edge.data import BatchLoader, ImageSet, load_splits
from mimkd_edge.imaging import image_files, normalise
from mimkd_edge.recipe import dumps_toml
from mimkd_edge.rundir import RunDir, load_run
from mimkd_edge.runtime.accuracy import evaluate, model_inputs
from mimkd_edge.runtime.hardware import native_bf16
from mimkd_edge.runtime.predict import open_artifact, predict_files
from mimkd_edge.runtime.session import open_session


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A 1-epoch Conv-4 on a 3-class 12×12 image folder (classes differ in brightness), exported to
    ONNX and an OpenVINO IR."""
    tmp = tmp_path_factory.mktemp("predict")
    write_brightness_folder(tmp / "data", size=12, train=16, test=6)
    recipe = tmp / "r.toml"
    recipe.write_text(dumps_toml({"name": "p", "seed": 0, "data": {"dataset": "imagefolder", "root": str(tmp / "data")},
                                  "student": {"model": "conv4"}, "method": {"name": "none"},
                                  "train": {"epochs": 1, "batch_size": 8, "lr": 0.05, "milestones": [1]}}))
    runner = CliRunner()
    r = runner.invoke(main, ["train", str(recipe), "--out", str(tmp / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["export", str(tmp / "run"), "--onnx", "--openvino", "--exporter", "torchscript"])
    assert r.exit_code == 0, r.output
    return tmp


def test_normalise_is_bit_identical_to_the_training_loader():
    images = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (5, 3, 9, 9), dtype=np.uint8))
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    loader = BatchLoader(ImageSet(images, torch.zeros(5, dtype=torch.long)), 5, mean, std, train=False)
    x, _, _ = next(iter(loader.epoch(0)))
    assert np.array_equal(normalise(images.numpy(), mean, std), x.numpy())
    assert np.array_equal(model_inputs(images, mean, std, baked=False), x.numpy())


@pytest.mark.parametrize("artifact", ["model_fp32.onnx", "model_fp32.xml"])
def test_predictions_are_the_bench_accuracy_paths(folder_run, artifact):
    path = RunDir(folder_run / "run").export / artifact
    session, info = open_artifact(path)
    assert info.classes == ["k0", "k1", "k2"] and (info.channels, info.size) == (3, 12)
    files = image_files([folder_run / "data" / "test"])  # class by class, sorted: the split's own order
    predictions = predict_files(session, info, files, top_k=3, batch_size=4)
    loaded = load_run(folder_run / "run")
    splits = load_splits(loaded.recipe.data, recorded=loaded.data_source)
    x = model_inputs(splits.test.take(slice(0, len(splits.test))), splits.mean, splits.std, baked=False)
    expected = [info.classes[i] for i in session.run(x).argmax(1)]
    assert [p.label for p in predictions] == expected
    truth = [f.parent.name for f in files]
    accuracy = 100.0 * sum(p.label == t for p, t in zip(predictions, truth, strict=True)) / len(files)
    bench = evaluate(open_session(path, session.backend), splits.test, splits.mean, splits.std)
    assert accuracy == pytest.approx(bench.accuracy)


def test_top_k_is_sorted_and_clamped_to_the_classes(folder_run):
    result = CliRunner().invoke(main, ["predict", str(RunDir(folder_run / "run").export / "model_fp32.onnx"),
                                       str(folder_run / "data" / "test" / "k2" / "0.png"), "--top-k", "9", "--json"])
    assert result.exit_code == 0, result.output
    (p,) = json.loads(result.output)["predictions"]
    probs = [t["probability"] for t in p["top"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0)


def test_an_image_of_another_size_is_resized_as_training_does(folder_run, tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(big)
    xml = RunDir(folder_run / "run").export / "model_fp32.xml"
    result = CliRunner().invoke(main, ["predict", str(xml), str(big), "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    got = {t["label"]: t["probability"] for t in json.loads(result.output)["predictions"][0]["top"]}
    # the rule the artifact states, applied by hand: RGB, bilinear to 12×12, normalised with its mean/std
    session, info = open_artifact(xml)
    pixels = np.asarray(Image.open(big).convert("RGB").resize((12, 12), Image.BILINEAR)).transpose(2, 0, 1)[None]
    logits = session.run(((pixels.astype(np.float32) / 255 - np.array(info.mean, np.float32)[:, None, None])
                          / np.array(info.std, np.float32)[:, None, None]).astype(np.float32))[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [got[c] for c in info.classes] == pytest.approx(expected.tolist(), abs=1e-4)


def test_an_artifact_that_does_not_describe_itself_is_one_line(tmp_path, folder_run):
    from mimkd_edge.export.onnx_export import export_onnx
    from mimkd_edge.models import create_model

    bare = tmp_path / "bare.onnx"
    export_onnx(create_model("conv4", num_classes=3).eval(), bare, input_size=12, exporter="torchscript")
    import onnx

    proto = onnx.load(str(bare))
    del proto.metadata_props[:]
    onnx.save(proto, str(bare))
    result = CliRunner().invoke(main, ["predict", str(bare), str(folder_run / "data" / "test")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "does not describe its input" in result.output


_NO_TORCH = NO_TORCH_PREAMBLE + """
from mimkd_edge.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    assert "torch" not in sys.modules
    sys.exit(e.code)
"""


@pytest.mark.parametrize("artifact", ["model_fp32.onnx", "model_fp32.xml"])
def test_predict_runs_where_torch_cannot_be_imported(folder_run, artifact):
    args = ["predict", str(RunDir(folder_run / "run").export / artifact), str(folder_run / "data" / "test"), "--json"]
    done = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["images"] == 18 and all(len(p["top"]) == 3 for p in report["predictions"])


@pytest.fixture(scope="module")
def benched_run(folder_run):
    """folder_run benchmarked (briefly): its bench file records the deployment choice."""
    run = folder_run / "run"
    result = CliRunner().invoke(main, ["bench", str(run), "--backend", "onnxruntime,openvino", "--seconds", "0.05",
                                       "--warmup", "2", "--throughput-batch", "0", "--shape", "static",
                                       "--results", str(folder_run / "bench.csv")])
    assert result.exit_code == 0, result.output
    assert "deploy fp32" in result.output
    return run


def test_predict_on_a_run_uses_the_artifact_and_backend_its_benchmark_chose(benched_run, folder_run):
    choices = json.loads(RunDir(benched_run).bench.read_text())["choices"]
    assert choices[0]["precision"] == "fp32" and choices[0]["backend"] in ("onnxruntime", "openvino")
    choice = min(choices, key=lambda c: c["median_ms"])  # with no --precision: the fastest choice (bf16 on some CPUs)
    images = str(folder_run / "data" / "test")
    via_run = CliRunner().invoke(main, ["predict", str(benched_run), images, "--json"])
    assert via_run.exit_code == 0, via_run.output
    got = json.loads(via_run.output)
    assert got["backend"] == choice["backend"]
    assert got["inference_precision"] == {"f32": "fp32", "bf16": "bf16"}[choice.get("compute", "f32")]
    suffix = ".onnx" if choice["artifact"].startswith("onnx") else ".xml"
    assert got["artifact"].endswith("model_fp32" + suffix)
    direct = CliRunner().invoke(main, ["predict", got["artifact"], images, "--json", "--backend", choice["backend"]])
    if choice.get("compute", "f32") == "f32":  # the file opened by hand computes as exported: the same predictions
        assert json.loads(direct.output)["predictions"] == got["predictions"]
    said = CliRunner().invoke(main, ["predict", str(benched_run), images])
    assert said.exit_code == 0 and f"fastest {choice['precision']} artifact" in " ".join(said.output.split())


def test_a_bf16_choice_is_opened_with_the_bf16_hint(benched_run, folder_run, tmp_path, monkeypatch):
    """A bf16 deployment choice (an IR OpenVINO runs with its bf16 hint) is opened with that hint; the
    choice is written by hand here, since only CPUs with native bf16 measure one."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(benched_run, run)
    bench = json.loads(RunDir(run).bench.read_text())
    ir = next(r for r in bench["rows"] if r["artifact"] == "openvino-fp32")
    bench["choices"] = [{"precision": "bf16", "artifact": "openvino-fp32", "backend": "openvino", "median_ms": 0.01,
                         "threads": 1, "batch": 1, "accuracy": None, "sha256": ir["sha256"], "why": "by hand",
                         "compute": "bf16"}]
    RunDir(run).bench.write_text(json.dumps(bench))
    import mimkd_edge.runtime.predict as predict_module

    hints = []
    real_open = predict_module.open_session
    monkeypatch.setattr(predict_module, "open_session",
                        lambda *a, **k: hints.append(k.get("inference_precision")) or real_open(*a, **k))
    images = str(folder_run / "data" / "test")
    result = CliRunner().invoke(main, ["predict", str(run), images, "--json", "--precision", "bf16"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output)
    assert hints == ["bf16"] and got["backend"] == "openvino" and got["artifact"].endswith("model_fp32.xml")
    if native_bf16():  # elsewhere OpenVINO may keep f32 (or emulate): what it computes is its call
        assert got["inference_precision"] == "bf16"
    onnx = next(r for r in bench["rows"] if r["artifact"] == "onnx-fp32")  # the .onnx file, chosen on OpenVINO
    bench["choices"][0].update(artifact="onnx-fp32", sha256=onnx["sha256"])
    RunDir(run).bench.write_text(json.dumps(bench))
    forced = CliRunner().invoke(main, ["predict", str(run), images, "--json", "--backend", "onnxruntime"])
    assert forced.exit_code == 0, forced.output
    assert hints[-1] == "f32" and json.loads(forced.output)["backend"] == "onnxruntime"  # forced runtime: as exported


def test_predict_on_a_run_without_a_choice_is_one_line(benched_run, folder_run, tmp_path):
    images = str(folder_run / "data" / "test")
    for args, expected in ((["--precision", "int8"], "no int8 artifact"), ([], None)):
        target = benched_run if expected else tmp_path  # tmp_path: a directory that is no benchmarked run
        result = CliRunner().invoke(main, ["predict", str(target), images, *args])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert (expected or "not benchmarked") in result.output


def test_predict_on_a_run_needs_no_torch(benched_run, folder_run):
    args = ["predict", str(benched_run), str(folder_run / "data" / "test"), "--json"]
    done = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"] in ("onnxruntime", "openvino")


def test_openvino_reads_the_metadata_of_an_onnx_artifact(folder_run):
    onnx = str(RunDir(folder_run / "run").export / "model_fp32.onnx")
    images = str(folder_run / "data" / "test")
    by = {backend: CliRunner().invoke(main, ["predict", onnx, images, "--json", "--backend", backend])
          for backend in ("openvino", "onnxruntime")}
    assert by["openvino"].exit_code == 0, by["openvino"].output
    labels = {b: [p["top"][0]["label"] for p in json.loads(r.output)["predictions"]] for b, r in by.items()}
    assert json.loads(by["openvino"].output)["backend"] == "openvino" and labels["openvino"] == labels["onnxruntime"]


_WITHOUT = """
import importlib.abc, sys
missing = set(sys.argv[1].split(","))
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Blocked())
from mimkd_edge.cli import main
main(sys.argv[2:])
"""


@pytest.mark.parametrize(("missing", "command", "fragments"), [
    ("openvino", ["predict", "model_fp32.xml", "IMAGES"],
     ["`mimkd-edge predict` needs openvino", "pip install openvino"]),
    ("torch,torchvision", ["models"], ["`mimkd-edge models` needs torch", "pip install -e ."]),
])
def test_a_missing_runtime_is_one_line_naming_what_to_install(folder_run, missing, command, fragments):
    export, images = RunDir(folder_run / "run").export, folder_run / "data" / "test"
    args = [str(export / a) if a.endswith(".xml") else str(images) if a == "IMAGES" else a for a in command]
    done = subprocess.run([sys.executable, "-c", _WITHOUT, missing, *args], capture_output=True, text=True,
                          timeout=300, check=False)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-2000:]
    assert all(f in lines[0] for f in fragments), lines[0]



_IMPORTS = """
import importlib.abc, json, sys
class _Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Blocked())
from mimkd_edge.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
_ROOT = Path(__file__).resolve().parents[2]
_IMPORT_NAMES = {"pillow": "PIL", "tomli-w": "tomli_w"}


def _requirements(lines) -> dict[str, str]:
    """{distribution name: its version bounds} of requirement lines (comments and blanks skipped)."""
    out = {}
    for raw in lines:
        line = raw.split("#")[0].strip()
        if line:
            name = re.split(r"[<>=!~ ]", line, maxsplit=1)[0].lower()
            out[name] = line[len(name):]
    return out


def test_the_device_requirements_are_pyproject_s_bounds_without_torch():
    readme = (_ROOT / "README.md").read_text()
    assert "pip install -r requirements-device.txt && pip install --no-deps ." in readme
    device = _requirements((_ROOT / "requirements-device.txt").read_text().splitlines())
    declared = _requirements(tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert not {"torch", "torchvision", "nncf", "openvino"} & set(device)
    assert all(declared[name] == bounds for name, bounds in device.items()), (device, declared)


@pytest.mark.parametrize("artifact", ["model_fp32.onnx", "model_fp32.xml"])
def test_predict_imports_no_declared_dependency_beyond_the_device_requirements(folder_run, artifact):
    """What README's device install leaves out (torch, nncf, matplotlib, scipy, ...) predict never imports."""
    args = ["predict", str(RunDir(folder_run / "run").export / artifact), str(folder_run / "data" / "test"), "--json"]
    done = subprocess.run([sys.executable, "-c", _IMPORTS, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    declared = _requirements(tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    allowed = set(_requirements((_ROOT / "requirements-device.txt").read_text().splitlines())) | {"openvino"}
    used = {name for name in declared if _IMPORT_NAMES.get(name, name) in imported}
    assert used <= allowed, f"predict imports {sorted(used - allowed)}, which requirements-device.txt lacks"


DEVICE_VENV = os.environ.get("MIMKD_DEVICE_VENV")  # .ci/run installs README's device set-up there


@pytest.mark.skipif(not DEVICE_VENV, reason="MIMKD_DEVICE_VENV is not set: .ci/run builds the device venv")
def test_the_readme_device_install_predicts_without_torch(folder_run):
    """README's device install (requirements-device.txt, then the package without its dependencies), done by
    .ci/run in a fresh venv from the package index: it has no torch, and its `mimkd-edge predict` gives the
    classes the development install gives."""
    python, cli = Path(DEVICE_VENV) / "bin" / "python", Path(DEVICE_VENV) / "bin" / "mimkd-edge"
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True, check=False).returncode != 0
    args = ["predict", str(RunDir(folder_run / "run").export / "model_fp32.onnx"), str(folder_run / "data" / "test"),
            "--json"]
    device = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=300, check=False)
    assert device.returncode == 0, device.stderr[-2000:]
    here = subprocess.run([sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert [p["top"][0] for p in json.loads(device.stdout)["predictions"]] == \
        [p["top"][0] for p in json.loads(here.stdout)["predictions"]]
