"""What every comparison over seeds starts from: runs grouped by student, method arm and seed, and the pairs
whose two runs crossed CPUs or commits (read from the summaries' sessions, else their own cpu / git_commit)."""

import dataclasses
from pathlib import Path

from mimkd_edge.report.protocol import pair_flag, run_provenance, seed_summaries
from mimkd_edge.rundir import read_summary

RUNS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu" / "runs"
KD = read_summary(RUNS / "cpu-conv4_mp-kd-s0")


def _session(cpu, commit, start=0):
    return {"start_epoch": start, "cpu": cpu, "git_commit": commit, "data": "sha256:x"}


def _with(summary, **changes):
    return dataclasses.replace(summary, **changes)


def test_pair_flag_reads_sessions():
    one = _with(KD, sessions=[_session("Zen 4", "abc")])
    assert pair_flag(one, _with(KD, sessions=[_session("Zen 4", "abc+dirty")])) == ""  # a dirty tree is its commit
    assert pair_flag(one, _with(KD, sessions=[_session("Xeon", "abc")])) == "CPU"
    assert pair_flag(one, _with(KD, sessions=[_session("Xeon", "def")])) == "CPU, commit"
    resumed = _with(KD, sessions=[_session("Zen 4", "abc"), _session("Zen 4", "def", start=4)])
    assert pair_flag(one, resumed) == "commit"  # crossed within one run
    assert run_provenance(resumed) == ({"Zen 4"}, {"abc", "def"})


def test_pair_flag_falls_back_to_the_summary_and_says_unknown():
    old = _with(KD, sessions=[], cpu="Zen 4", git_commit="abc")
    assert pair_flag(old, _with(old, git_commit="abc+dirty")) == ""
    assert pair_flag(old, _with(old, cpu="Xeon")) == "CPU"
    assert pair_flag(old, _with(old, cpu=None)) == "CPU unknown"
    assert pair_flag(old, _with(old, cpu=None, git_commit=None)) == "CPU unknown, commit unknown"
    assert pair_flag(old, _with(KD, sessions=[_session(None, "abc")])) == "CPU unknown"


def test_seed_summaries_group_runs_by_student_arm_and_seed():
    runs = sorted(p.parent for p in RUNS.glob("*/summary.json"))
    grouped = seed_summaries(runs)
    assert set(grouped) >= {"conv4", "conv4_mp"} and set(grouped["conv4_mp"]["kd"]) == {0, 1, 2}
    assert grouped["conv4_mp"]["kd"][1] == read_summary(RUNS / "cpu-conv4_mp-kd-s1")
    assert "mimkd-w128" in grouped["conv4_mp"]  # MIMKD split by critic width (run_arm)
