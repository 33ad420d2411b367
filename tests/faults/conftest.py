"""The fault suite: one test per way a user (or a crash) can break a promise of docs/guarantees.md.

A tiny run on synthetic data is trained and exported once; each test works on its own copy.
"""

import shutil

import pytest
from helpers import tiny_recipe


@pytest.fixture(scope="session")
def _exported_once(tmp_path_factory):
    from mimkd_edge.engine.trainer import fit
    from mimkd_edge.export import export_run

    root = tmp_path_factory.mktemp("faults")
    run = root / "runs" / "tiny"
    fit(tiny_recipe(name="tiny", model="conv4"), run)
    export_run(run, onnx=True, exporter="torchscript")
    return run


@pytest.fixture()
def exported_run(_exported_once, tmp_path):
    """A private copy of a finished, exported run (tests may damage it)."""
    return shutil.copytree(_exported_once, tmp_path / "runs" / "tiny")
