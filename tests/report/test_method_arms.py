"""MIMKD runs at another critic width than the paper's are their own arm in every report: the protocol
table never pools 128-wide and 512-wide critics into one mean."""

import shutil
from pathlib import Path

from mimkd_edge.report.protocol import arm_rows, protocol_markdown, protocol_rows, run_arm
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


def test_protocol_rows_keep_a_sweeps_grid_settings_apart():
    """A sweep passes each run's grid values: two settings of one method are two rows with their own
    seeds, and the table names the setting; without settings the table has no such column."""
    kd = [RUNS / f"cpu-conv4_mp-kd-s{seed}" for seed in (0, 1, 2)]
    setting = {kd[0]: "lr0.01", kd[1]: "lr0.05", kd[2]: "lr0.05"}
    rows = protocol_rows(kd, setting.__getitem__)
    assert [(r["setting"], r["seeds"]) for r in rows] == [("lr0.01", [0]), ("lr0.05", [1, 2])]
    header = protocol_markdown(rows).splitlines()[0]
    assert header.startswith("| student | method | setting | seeds |")
    assert "setting" not in protocol_markdown(protocol_rows(kd)).splitlines()[0]
