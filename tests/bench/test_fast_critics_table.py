"""Issue 17's report pairs each exact MIMKD run with the sampled-location run of the same seed, and shows a
run still training with the epochs it has, marked as such."""

import json
from pathlib import Path

from bench.cpu_report import (exact_sampled_markdown, exact_sampled_pairs, fast_critics_markdown,
                                        paired_trace_markdown)

RUNS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cpu" / "runs"
SOURCE = RUNS / "cpu-conv4_mp-mimkd-critic_hidden128-locations0-s0"  # 128-wide critics; recipe edited below


def _run(tmp_path: Path, name: str, locations: int, epochs: int, acc_shift: float = 0.0,
         precision: str = "fp32", sampling: str = "uniform", global_precision: str = "same",
         feature_locations: int | None = None) -> Path:
    run = tmp_path / name
    run.mkdir()
    recipe = (SOURCE / "recipe.toml").read_text().replace(
        "critic_hidden = 128", f"critic_hidden = 512\nlocations = {locations}\ncritic_precision = \"{precision}\"\n"
                               f"location_sampling = \"{sampling}\"\nglobal_critic_precision = \"{global_precision}\""
                               + ("" if feature_locations is None else f"\nfeature_locations = {feature_locations}"))
    (run / "recipe.toml").write_text(recipe)
    lines = (SOURCE / "metrics.jsonl").read_text().splitlines()[:epochs]
    shifted = [json.dumps({**json.loads(line), "test_acc": json.loads(line)["test_acc"] + acc_shift}) for line in lines]
    (run / "metrics.jsonl").write_text("\n".join(shifted) + "\n")
    return run


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip("|").split("|")]


def test_unfinished_run_is_marked_and_compared_with_the_protocol_seed(tmp_path):
    exact = _run(tmp_path, "exact-s0", locations=0, epochs=3)
    protocol = sorted(p.parent for p in RUNS.glob("*/summary.json"))
    cells = _cells(fast_critics_markdown([exact], protocol).splitlines()[-1])
    assert cells[:5] == ["exact-s0", "Conv-4-MP", "0", "width 512, every location (exact)", "3 of 8 (running)"]
    assert cells[5] == "72.58"  # epoch 3 of the source run
    assert cells[-1] == "78.81"  # the protocol's width-128 MIMKD, seed 0, 8 epochs


def test_trace_shows_both_runs_and_their_difference_on_common_epochs(tmp_path):
    exact = _run(tmp_path, "exact-s0", locations=0, epochs=2)
    sampled = _run(tmp_path, "sampled-s0", locations=16, epochs=5, acc_shift=0.5)
    rows = paired_trace_markdown(exact, sampled).splitlines()
    assert "test acc %, exact" in rows[0] and "test acc %, L = 16" in rows[0]
    body = [_cells(r) for r in rows[2:]]
    assert [r[0] for r in body] == ["1", "2"]  # only the epochs both runs have
    assert body[0][1:4] == ["64.18", "64.68", "+0.50"]
    assert body[0][6] == "+0.000"  # same MI (same source metrics): Δ 0


def test_verdict_pairs_finished_seeds_and_gives_mean_and_spread_of_the_differences(tmp_path):
    pairs = []
    for seed, base, shift in ((0, 0.0, -0.1), (1, 0.4, 0.3)):
        exact = _run(tmp_path, f"exact-s{seed}", locations=0, epochs=8, acc_shift=base)
        sampled = _run(tmp_path, f"sampled-s{seed}", locations=16, epochs=8, acc_shift=base + shift)
        for run in (exact, sampled):
            (run / "summary.json").write_text("{}")  # finished
        pairs.append((seed, exact, sampled))
    running = (2, _run(tmp_path, "exact-s2", locations=0, epochs=3), _run(tmp_path, "sampled-s2", locations=16,
                                                                           epochs=8))
    rows = [_cells(r) for r in exact_sampled_markdown([*pairs, running]).splitlines()[2:]]
    assert [r[0] for r in rows] == ["0", "1", "mean ± std (2 seeds)", "seed std of the exact runs (2 seeds)"]
    # the unfinished seed 2 is left out
    assert rows[0][1:4] == ["78.81", "78.71", "-0.10"] and rows[1][3] == "+0.30"
    assert rows[2][3] == "+0.10 ± 0.28"  # mean of -0.1 and +0.3; sample std 0.283
    assert rows[2][4] == "+0.000 ± 0.000"  # same MI in both (same source metrics)
    assert rows[3][3:] == ["0.28", "0.000", "0.000", "0.000"]  # exact runs at 78.81 and 79.21; same MI


def test_each_sampled_L_is_paired_with_the_exact_run_of_its_seed(tmp_path):
    runs = [_run(tmp_path, f"L{L}-s{seed}", locations=L, epochs=1) for seed in (0, 1) for L in (0, 16, 32)]
    runs.append(_run(tmp_path, "L16-only-s2", locations=16, epochs=1))  # no exact run of seed 2: no pair
    for run, seed in zip(runs, (0, 0, 0, 1, 1, 1, 2), strict=True):
        (run / "recipe.toml").write_text((run / "recipe.toml").read_text().replace("seed = 0", f"seed = {seed}"))
    pairs = exact_sampled_pairs(runs)
    assert list(pairs) == [(16, "fp32", "uniform", 16), (32, "fp32", "uniform", 32)]
    assert [(seed, e.name, s.name) for seed, e, s in pairs[32, "fp32", "uniform", 32]] == [(0, "L0-s0", "L32-s0"),
                                                                                       (1, "L0-s1", "L32-s1")]
    assert [s.name for _, _, s in pairs[16, "fp32", "uniform", 16]] == ["L16-s0", "L16-s1"]


def test_bf16_runs_pair_with_the_fp32_exact_run_and_are_labelled(tmp_path):
    exact = _run(tmp_path, "L0-s0", locations=0, epochs=1)
    fp32 = _run(tmp_path, "L32-s0", locations=32, epochs=1)
    bf16 = _run(tmp_path, "L32-bf16-s0", locations=32, epochs=1, precision="bf16")
    pairs = exact_sampled_pairs([bf16, exact, fp32])
    assert pairs == {(32, "bf16", "uniform", 32): [(0, exact, bf16)],  # neither hides the other
                     (32, "fp32", "uniform", 32): [(0, exact, fp32)]}
    assert "I_local, L = 32, bf16" in paired_trace_markdown(exact, bf16).splitlines()[0]
    labels = [_cells(r)[3] for r in fast_critics_markdown([bf16, fp32], []).splitlines()[2:]]
    assert labels == ["width 512, L = 32 sampled", "width 512, L = 32 sampled, bf16 critics"]


def test_stratified_runs_are_their_own_path_and_an_exact_run_stays_exact_whatever_its_sampling(tmp_path):
    exact = _run(tmp_path, "L0-s0", locations=0, epochs=1, sampling="stratified")  # draws nothing: still exact
    uniform = _run(tmp_path, "L32-s0", locations=32, epochs=1, precision="bf16")
    strat = _run(tmp_path, "L32-strat-s0", locations=32, epochs=1, precision="bf16", sampling="stratified")
    pairs = exact_sampled_pairs([strat, exact, uniform])
    assert pairs == {(32, "bf16", "stratified", 32): [(0, exact, strat)],
                     (32, "bf16", "uniform", 32): [(0, exact, uniform)]}
    assert "I_local, L = 32, stratified, bf16" in paired_trace_markdown(exact, strat).splitlines()[0]
    labels = [_cells(r)[3] for r in fast_critics_markdown([strat, uniform], []).splitlines()[2:]]
    assert labels == ["width 512, L = 32 sampled, bf16 critics", "width 512, L = 32 stratified, bf16 critics"]


def test_a_global_critic_kept_in_fp32_is_its_own_path_and_says_so(tmp_path):
    exact = _run(tmp_path, "L0-s0", locations=0, epochs=1, global_precision="fp32")  # fp32 everywhere: exact
    bf16 = _run(tmp_path, "L32-s0", locations=32, epochs=1, precision="bf16", sampling="stratified")
    kept = _run(tmp_path, "L32-g-s0", locations=32, epochs=1, precision="bf16", sampling="stratified",
                global_precision="fp32")
    pairs = exact_sampled_pairs([kept, exact, bf16])
    assert pairs == {(32, "bf16", "stratified", 32): [(0, exact, bf16)],
                     (32, "bf16-global-fp32", "stratified", 32): [(0, exact, kept)]}
    assert "I_local, L = 32, stratified, bf16, global fp32" in paired_trace_markdown(exact, kept).splitlines()[0]
    labels = [_cells(r)[3] for r in fast_critics_markdown([kept, bf16], []).splitlines()[2:]]
    assert labels == ["width 512, L = 32 stratified, bf16 critics",
                      "width 512, L = 32 stratified, bf16 critics, global fp32"]


def test_a_feature_term_with_its_own_L_is_its_own_path_and_says_so(tmp_path):
    exact = _run(tmp_path, "L0-s0", locations=0, epochs=1, feature_locations=0)  # 0 everywhere: still exact
    same = _run(tmp_path, "L32-s0", locations=32, epochs=1, feature_locations=32)  # as if unset
    own = _run(tmp_path, "L32-f64-s0", locations=32, epochs=1, feature_locations=64)
    pairs = exact_sampled_pairs([own, exact, same])
    assert pairs == {(32, "fp32", "uniform", 32): [(0, exact, same)], (32, "fp32", "uniform", 64): [(0, exact, own)]}
    assert [p.tag() for p in pairs] == ["-L32", "-L32-feature-L64"]
    assert "I_local, L = 32, feature L = 64" in paired_trace_markdown(exact, own).splitlines()[0]
    labels = [_cells(r)[3] for r in fast_critics_markdown([own, same], []).splitlines()[2:]]
    assert labels == ["width 512, L = 32 sampled", "width 512, L = 32 sampled, feature L = 64"]
