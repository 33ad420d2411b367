"""The decisive protocol's report, on run directories fabricated here with known accuracies."""

import json

import pytest

from mimkd_edge.recipe import dumps_toml
from bench import collect_protocol
from bench.protocol_report import (arm_results, choice_markdown, comparisons, comparisons_markdown, leader_lines,
                                   logit_choice, results_markdown, standing_lines)
from mimkd_edge.report.tables import method_arm_of, method_name

T975 = {2: 4.302652729749464, 4: 2.7764451051977987}  # Student t quantiles, df = 2 and 4


def _run(root, name, method, seed, val, test, tests_by_epoch=None, cpu="Zen 4", commit="abc"):
    d = root / name
    d.mkdir()
    (d / "recipe.toml").write_text(dumps_toml({"name": name, "method": method}))
    summary = {"name": name, "method": method["name"], "seed": seed,
               "student": {"model": "conv4_mp", "params": 1, "macs": 1},
               "data": {"dataset": "cifar10", "source": "x"}, "epochs": 2, "final_test_acc": test,
               "final_train_acc": 90.0, "wall_seconds": 1.0, "images_per_s": 1.0, "device": "cpu",
               "final_val_acc": val, "val_size": 5000,
               "sessions": [{"start_epoch": 0, "cpu": cpu, "git_commit": commit, "data": {"sha256": "x"}}]}
    (d / "summary.json").write_text(json.dumps(summary))
    epochs = tests_by_epoch or [test - 0.1, test]
    (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "lr": 0.1, "steps": 1, "loss": 1.0,
                                                         "train_acc": 90.0, "seconds": 1.0, "images_per_s": 1.0,
                                                         "test_acc": a, "test_loss": 1.0}) + "\n"
                                             for i, a in enumerate(epochs)))
    return d


@pytest.fixture
def runs(tmp_path):
    kd = [80.0, 81.0, 79.0]
    mimkd = [81.0, 82.2, 79.8]  # differences 1.0, 1.2, 0.8: mean 1.0, SD 0.2
    dkd = [81.0, 80.0, 80.0]  # differences 0, 2.5, −0.5: the interval spans 0
    out = []
    for s in range(3):
        out.append(_run(tmp_path, f"kd-s{s}", {"name": "kd"}, s, kd[s] + 1, kd[s]))
        out.append(_run(tmp_path, f"mimkd-s{s}", {"name": "mimkd"}, s, mimkd[s] + 1, mimkd[s],
                        cpu="Xeon" if s == 2 else "Zen 4"))
        out.append(_run(tmp_path, f"dkd-s{s}", {"name": "dkd"}, s, dkd[s], dkd[s],
                        tests_by_epoch=[dkd[s] - 0.4, dkd[s]]))
    return out


def test_arms_of_the_new_methods_and_their_names():
    assert method_arm_of({"name": "kd", "standardize": True}) == "kd-ls"
    assert method_arm_of({"name": "dkd"}) == "dkd"
    assert method_arm_of({"name": "mimkd", "alpha": 1.0}) == "mimkd"
    assert method_arm_of({"name": "mimkd", "alpha": 0.1}) == "mimkd+kd"
    assert method_arm_of({"name": "mimkd", "alpha": 0.1, "logit_standardize": True}) == "mimkd+kd-ls"
    assert method_arm_of({"name": "mimkd", "logit_term": "dkd"}) == "mimkd+dkd"
    assert method_arm_of({"name": "mimkd", "critic_hidden": 128, "logit_term": "dkd"}) == "mimkd-w128+dkd"
    assert method_name("mimkd+kd-ls") == "MIMKD + KD + LS" and method_name("dkd-ls") == "DKD + LS"


def test_results_mean_interval_and_convergence(runs):
    results = {r.arm: r for r in arm_results(runs)}
    kd = results["kd"]
    assert kd.seeds == (0, 1, 2) and kd.test == (80.0, 81.0, 79.0) and kd.val == (81.0, 82.0, 80.0)
    half = T975[2] * 1.0 / 3 ** 0.5  # SD of 80, 81, 79 is 1
    assert kd.test_ci == pytest.approx((80.0 - half, 80.0 + half))
    assert kd.last_move == pytest.approx(0.1) and results["dkd"].last_move == pytest.approx(0.4)
    assert kd.mean_move == pytest.approx(0.1)
    table = results_markdown(list(results.values()))
    assert "| Conv-4-MP | KD | 3 | 81.00 ± 1.00 | 80.00 ± 1.00 |" in table


def test_comparisons_of_our_arm_against_every_other(runs):
    rows = comparisons(runs)
    assert [(r["a"], r["b"]) for r in rows] == [("mimkd", "kd"), ("mimkd", "dkd")]
    vs_kd, vs_dkd = rows
    half = T975[2] * 0.2 / 3 ** 0.5
    assert vs_kd["diff"].mean == pytest.approx(1.0) and vs_kd["diff"].ci == pytest.approx((1 - half, 1 + half))
    assert vs_kd["diff"].verdict == "ahead" and vs_dkd["diff"].verdict == "level"
    assert vs_kd["val"] == pytest.approx(1.0)
    assert vs_kd["flagged"] == [(2, "CPU")]  # seed 2's MIMKD ran on another CPU
    table = comparisons_markdown(rows)
    assert "| Conv-4-MP | MIMKD − KD | 3 | +1.00 |" in table and "seed 2: CPU" in table
    lines = standing_lines(rows)
    assert lines == [f"Conv-4-MP, MIMKD: ahead of KD (+1.00, CI [+{1 - half:.2f}, +{1 + half:.2f}], n = 3); "
                     f"level with DKD (+0.67, CI {_ci(vs_dkd)}, n = 3)."]


def _ci(row):
    lo, hi = row["diff"].ci
    return f"[{lo:+.2f}, {hi:+.2f}]"


def _candidates(root, vals):
    """KD, KD + LS and DKD runs with the given validation accuracies per seed."""
    methods = {"kd": {"name": "kd"}, "kd-ls": {"name": "kd", "standardize": True}, "dkd": {"name": "dkd"}}
    return [_run(root, f"{arm}-s{s}", methods[arm], s, v, 70.0) for arm, by_seed in vals.items()
            for s, v in enumerate(by_seed)]


def test_mimkds_logit_term_is_undecided_until_every_candidate_has_both_choice_seeds(runs):
    choice = logit_choice(runs)  # KD and DKD have seeds 0-2, KD + LS none
    assert choice["conv4_mp"]["chosen"] is None and choice["conv4_mp"]["val"]["kd-ls"] is None
    assert "undecided" in choice_markdown(choice)


def test_mimkds_logit_term_is_the_best_mean_validation_over_seeds_0_and_1_only(tmp_path):
    runs = _candidates(tmp_path, {"kd": [81.0, 82.0, 99.0], "kd-ls": [82.0, 82.5], "dkd": [83.0, 81.0]})
    choice = logit_choice(runs)["conv4_mp"]
    assert choice["chosen"] == "kd-ls"  # 82.25 beats DKD's 82.0 and KD's 81.5 (its seed 2 is not a choice seed)
    table = choice_markdown({"conv4_mp": choice})
    assert "| Conv-4-MP | KD + LS | 82.00 | 82.50 | 82.25 | its term: MIMKD + KD + LS |" in table


def test_a_tie_in_the_logit_choice_goes_to_the_earlier_candidate(tmp_path):
    runs = _candidates(tmp_path, {"kd": [81.0, 82.0], "kd-ls": [81.5, 81.5], "dkd": [80.0, 80.0]})
    assert logit_choice(runs)["conv4_mp"]["chosen"] == "kd"


def test_the_leader_is_the_best_validation_arm_and_ours_shows_its_gaps(runs):
    rows = comparisons(runs)  # validation means: MIMKD 82.0, KD 81.0, DKD 80.33
    [line] = leader_lines(arm_results(runs), rows, {("conv4_mp", "mimkd"): "recipes/x.toml"})
    assert line.startswith("Conv-4-MP: the best mean validation accuracy over 3 seeds is MIMKD's "
                           "(82.00 %; test 81.00 %")
    assert ", recipe `recipes/x.toml`." in line
    assert "over KD +1.00 (CI " in line and ", ahead)" in line and "over DKD +0.67" in line


def test_a_leading_baseline_is_named_and_our_arms_compared_with_it(tmp_path):
    runs = [_run(tmp_path, f"kd-s{s}", {"name": "kd"}, s, 90.0, 80.0 + s) for s in range(2)]
    runs += [_run(tmp_path, f"mimkd-s{s}", {"name": "mimkd"}, s, 85.0, 79.0 + s) for s in range(2)]
    [line] = leader_lines(arm_results(runs), comparisons(runs), {})
    assert "is KD's (90.00 %; test 80.50 %" in line and "recipe" not in line
    assert line.endswith("Our arms against it on the paired test seeds: MIMKD -1.00 (CI [-1.00, -1.00], behind).")


def test_no_arm_is_named_while_the_arms_have_different_seeds(tmp_path):
    runs = [_run(tmp_path, f"none-s{s}", {"name": "none"}, s, 90.0, 80.0) for s in range(5)]
    runs += [_run(tmp_path, "kd-s0", {"name": "kd"}, 0, 95.0, 85.0)]  # better, on one seed only
    [line] = leader_lines(arm_results(runs), comparisons(runs), {})
    assert line == "Conv-4-MP: the arm to pick waits until every arm has the same seeds (now 1–5 per arm)."


def test_a_protocol_runs_recipe_is_the_committed_file_its_name_comes_from(tmp_path):
    runs = [_run(tmp_path, "protocol-conv4_mp-kd_ls-s3", {"name": "kd", "standardize": True}, 3, 80.0, 80.0),
            _run(tmp_path, "protocol-conv4_mp-nonexistent-s0", {"name": "dkd"}, 0, 80.0, 80.0)]
    assert collect_protocol.recipe_of(runs) == {("conv4_mp", "kd-ls"): "recipes/protocol/conv4_mp-kd_ls.toml"}


def test_the_convergence_check_reads_the_mean_over_seeds_and_the_largest_single_seed_move(tmp_path):
    runs = [_run(tmp_path, "kd-s0", {"name": "kd"}, 0, 80.0, 80.0, tests_by_epoch=[79.5, 80.0]),  # +0.5
            _run(tmp_path, "kd-s1", {"name": "kd"}, 1, 80.0, 80.0, tests_by_epoch=[80.3, 80.0])]  # -0.3
    [kd] = arm_results(runs)
    assert kd.mean_move == pytest.approx(0.1) and kd.last_move == pytest.approx(0.5)
    assert "| 80.00 ± 0.00 | [80.00, 80.00] | +0.10 | 0.50 |" in results_markdown([kd])
