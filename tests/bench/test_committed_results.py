"""The committed CPU-protocol tables hold exactly the numbers of the committed run files."""

from pathlib import Path

import pytest

from bench import collect_cpu_results, collect_protocol

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", ["cpu", "cpu-3epoch"])
def test_cpu_results_tables_regenerate_identically(folder):
    collect = collect_cpu_results
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
    collect = collect_protocol
    dest = ROOT / "bench" / "results" / "protocol"
    teachers, _ = collect.split_runs(dest)
    assert teachers, "no committed protocol teacher"
    committed = (dest / "README.md").read_text()
    for name, body in collect.blocks(dest).items():
        start, end = collect.block_markers(name, collect.GENERATOR)
        assert start in committed, f"block {name} missing from {dest / 'README.md'}"
        assert committed.split(start, 1)[1].split(end, 1)[0].lstrip("\n") == body, name


def test_readme_lead_is_the_protocol_pages_lines():
    collect = collect_protocol
    start, end = collect.block_markers(collect.README_BLOCK, collect.GENERATOR)
    readme = (ROOT / "README.md").read_text()
    assert start in readme, "README.md has no generated protocol block"
    body = collect.readme_block(collect.blocks(ROOT / "bench" / "results" / "protocol"))
    assert readme.split(start, 1)[1].split(end, 1)[0].lstrip("\n") == body
