"""The ablation table pairs each run with the protocol's MIMKD and KD runs of the same student and seed."""

from pathlib import Path

from bench.cpu_report import ablation_markdown

RUNS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu" / "runs"
# the protocol's MIMKD arm with 128-wide critics (the ablation's width), seeds 1 and 2
W128_S1, W128_S2 = "cpu-conv4-mimkd-critic_hidden128-locations0-s1", "cpu-conv4-mimkd-critic_hidden128-locations0-s2"


def test_gaps_are_to_the_same_student_and_seed():
    protocol = sorted(p.parent for p in RUNS.glob("*/summary.json"))
    # a protocol run read as if it were an ablation run: its gap to itself is zero
    row = ablation_markdown([RUNS / W128_S1], protocol).splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:3] == [W128_S1, "Conv-4", "1"]
    assert cells[3:7] == ["1", "1", "0.75", "1"]  # α, λg, λl, λf from the run's resolved recipe
    assert cells[7] == "72.74" and cells[8] == "+0.00" and cells[9] == "-0.07"  # − MIMKD, − KD seed 1 (72.81)


def test_figure_draws_one_student_and_seed_and_refuses_a_mix(tmp_path):
    import pytest

    from bench.ablation_figure import plot_ablation, variant_label
    from bench.cpu_report import ablation_points

    protocol = sorted(p.parent for p in RUNS.glob("*/summary.json"))
    points = ablation_points([RUNS / W128_S1, RUNS / "cpu-conv4-kd-s1"], protocol)
    mimkd = [p for p in points if p["run"] == W128_S1]
    assert variant_label(mimkd[0]["weights"]) == "α 1, λg 1, λl 0.75, λf 1"
    png = plot_ablation(mimkd, tmp_path / "ablation")
    assert png.suffix == ".png" and png.stat().st_size > 1000
    mixed = ablation_points([RUNS / W128_S1, RUNS / W128_S2], protocol)
    with pytest.raises(ValueError, match="one student and seed"):
        plot_ablation(mixed, tmp_path / "mixed")
