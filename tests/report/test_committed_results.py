"""The committed CPU-protocol tables hold exactly the numbers of the committed run files."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _collector():
    spec = importlib.util.spec_from_file_location("collect", ROOT / "bench" / "collect_cpu_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("folder", ["cpu", "cpu-3epoch"])
def test_cpu_results_tables_regenerate_identically(folder):
    collect = _collector()
    dest = ROOT / "bench" / "results" / folder
    assert collect.copied_runs(dest), "no committed CPU-protocol runs"
    committed = (dest / "README.md").read_text()
    generated = collect.blocks(dest)
    assert "table" in generated and {"paired", "paired-w128"} & set(generated)
    for name, body in generated.items():  # every generated block: the table, paired seeds, the MI trace
        start, end = collect.markers(name)
        assert start in committed, f"block {name} missing from {dest / 'README.md'}"
        assert committed.split(start, 1)[1].split(end, 1)[0].lstrip("\n") == body, name


def test_decisive_protocol_page_regenerates_identically():
    spec = importlib.util.spec_from_file_location("collect_protocol", ROOT / "bench" / "collect_protocol.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    dest = ROOT / "bench" / "results" / "protocol"
    teachers, _ = collect.split_runs(dest)
    assert teachers, "no committed protocol teacher"
    committed = (dest / "README.md").read_text()
    for name, body in collect.blocks(dest).items():
        start, end = collect.block_markers(name, collect.GENERATOR)
        assert start in committed, f"block {name} missing from {dest / 'README.md'}"
        assert committed.split(start, 1)[1].split(end, 1)[0].lstrip("\n") == body, name
