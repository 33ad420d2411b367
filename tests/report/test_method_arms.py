"""MIMKD runs at another critic width than the paper's are their own arm in every report: the protocol
table never pools 128-wide and 512-wide critics into one mean."""

import shutil
from pathlib import Path

from mimkd_edge.report.protocol import arm_rows, protocol_rows, run_arm
from mimkd_edge.report.tables import method_arm, method_name

RUNS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu" / "runs"
W128 = RUNS / "cpu-conv4_mp-mimkd-critic_hidden128-locations0-s0"


def test_arm_names():
    assert method_arm("mimkd", 512) == "mimkd" and method_arm("mimkd", 128) == "mimkd-w128"
    assert method_arm("kd", 128) == "kd"  # only MIMKD has critics
    assert method_name("mimkd-w128") == "MIMKD, 128-wide critics" and method_name("mimkd") == "MIMKD"


def test_protocol_rows_keep_critic_widths_apart(tmp_path):
    paper = tmp_path / "paper-width"
    shutil.copytree(W128, paper)
    recipe = (paper / "recipe.toml").read_text()
    (paper / "recipe.toml").write_text(recipe.replace("critic_hidden = 128", "critic_hidden = 512"))
    assert run_arm(W128) == "mimkd-w128" and run_arm(paper) == "mimkd"
    rows = protocol_rows([W128, paper])
    assert sorted(r["method"] for r in rows) == ["mimkd", "mimkd-w128"]
    assert all(len(r["seeds"]) == 1 for r in rows)
    assert {r.method for r in arm_rows([W128, paper])} == {"mimkd", "mimkd-w128"}  # the figure's labels too
