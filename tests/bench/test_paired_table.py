"""The CPU protocol's paired tables (bench.cpu_report): mean difference, t interval, p and verdict per
comparison, and the pairs whose two runs crossed CPUs or commits."""

import json
import shutil
from pathlib import Path

from bench.cpu_report import paired_seed_markdown
from mimkd_edge.report.stats import paired_comparison
from mimkd_edge.report.tables import interval_cell, p_cell
from mimkd_edge.rundir import read_summary

RUNS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu" / "runs"
CHAIN = ("mimkd", "kd", "none")


def _session(cpu, commit, start=0):
    return {"start_epoch": start, "cpu": cpu, "git_commit": commit, "data": "sha256:x"}


def _comparison_rows(table: str) -> list[list[str]]:
    second = table.split("\n\n")[1]
    return [[c.strip() for c in line.strip("|").split("|")] for line in second.splitlines()[2:]]


def test_comparison_rows_of_the_committed_runs():
    runs = sorted(p.parent for p in RUNS.glob("*/summary.json"))
    table = paired_seed_markdown(runs, CHAIN)
    assert "± " not in table.split("\n\n")[0]  # the per-seed table no longer passes SD off as uncertainty
    rows = _comparison_rows(table)
    assert [(r[0], r[1]) for r in rows] == [("Conv-4", "MIMKD − KD"), ("Conv-4", "KD − baseline (CE)"),
                                            ("Conv-4-MP", "MIMKD − KD"), ("Conv-4-MP", "KD − baseline (CE)")]
    acc = {(m, s): read_summary(RUNS / f"cpu-conv4_mp-{m}-s{s}").final_test_acc for m in CHAIN for s in (0, 1, 2)}
    d = paired_comparison([acc["mimkd", s] for s in (0, 1, 2)], [acc["kd", s] for s in (0, 1, 2)])
    assert rows[2][2:7] == ["3", f"{d.mean:+.2f}", interval_cell(d.ci), p_cell(d.p), d.verdict]
    assert all(r[7].startswith("3 of 3") for r in rows)  # the committed runs predate sessions and lack a CPU


def test_flag_names_only_the_pairs_that_crossed(tmp_path):
    runs = []
    for method in ("mimkd", "kd"):
        for seed in (0, 1, 2):
            src, dst = RUNS / f"cpu-conv4_mp-{method}-s{seed}", tmp_path / f"{method}-s{seed}"
            dst.mkdir()
            shutil.copyfile(src / "recipe.toml", dst / "recipe.toml")
            summary = json.loads((src / "summary.json").read_text())
            cpu = "Xeon" if (method, seed) == ("kd", 1) else "Zen 4"
            summary["sessions"] = [_session(cpu, "abc")]
            (dst / "summary.json").write_text(json.dumps(summary))
            runs.append(dst)
    rows = _comparison_rows(paired_seed_markdown(runs, ("mimkd", "kd")))
    assert len(rows) == 1 and rows[0][7] == "1 of 3: seed 1: CPU"


def test_one_seed_has_no_interval():
    runs = [RUNS / f"cpu-conv4_mp-{m}-s0" for m in CHAIN]
    table = paired_seed_markdown(runs, CHAIN)
    rows = _comparison_rows(table)
    assert [r[2:7] for r in rows] == [["1", rows[0][3], "–", "–", "level (n < 2)"],
                                      ["1", rows[1][3], "–", "–", "level (n < 2)"]]
    assert "| mean |" not in table  # no mean row over one seed
