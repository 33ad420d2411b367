"""The committed CPU-protocol table holds exactly the numbers of the committed run files."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collector():
    spec = importlib.util.spec_from_file_location("collect", ROOT / "bench" / "collect_cpu_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_results_table_regenerates_identically():
    collect = _collector()
    dest = ROOT / "bench" / "results" / "cpu"
    assert collect.copied_runs(dest), "no committed CPU-protocol runs"
    committed = (dest / "README.md").read_text()
    block = committed.split(collect.TABLE_START, 1)[1].split(collect.TABLE_END, 1)[0].lstrip("\n")
    assert block == collect.table(dest)
