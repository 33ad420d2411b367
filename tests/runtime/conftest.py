"""A tiny trained run (synthetic data) exported to ONNX once, shared by the runtime tests."""

import pytest
from helpers import tiny_recipe


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory):
    from mimkd_edge.engine.trainer import fit
    from mimkd_edge.export import export_run

    root = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIMKD_CACHE", str(root / "cache"))
        run = root / "runs" / "tiny"
        fit(tiny_recipe(name="tiny", model="conv4"), run)
        export_run(run, onnx=True)
    return run
