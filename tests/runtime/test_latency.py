"""Timing statistics on fixed numbers (hand-computed), and the timing loops' bookkeeping."""

import numpy as np
import pytest

from mimkd_edge.runtime.latency import interleave, percentile, summarize, time_calls


@pytest.mark.parametrize("values, q, expected", [
    ([1, 2, 3, 4, 5], 50, 3.0),
    ([1, 2, 3, 4, 5], 90, 4.6),     # rank 0.9·4 = 3.6 → 4 + 0.6·(5 − 4)
    ([1, 2, 3, 4, 5], 99, 4.96),    # rank 3.96 → 4 + 0.96·1
    ([1, 2, 3, 4, 5], 0, 1.0),
    ([1, 2, 3, 4, 5], 100, 5.0),
    ([5, 1, 4, 2, 3], 25, 2.0),     # order of the input does not matter: rank 1 → 2
    ([10, 20], 25, 12.5),           # rank 0.25 → 10 + 0.25·10
    ([10, 20, 30, 40], 50, 25.0),   # even count: halfway between the middle two
    ([7], 99, 7.0),
])
def test_percentile_hand_computed(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy_linear():
    v = np.random.default_rng(0).exponential(size=101)
    for q in (1, 50, 90, 99):
        assert percentile(v, q) == pytest.approx(np.percentile(v, q))


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_summarize_in_milliseconds():
    ns = [1_000_000, 2_000_000, 3_000_000, 4_000_000, 100_000_000]  # 1, 2, 3, 4, 100 ms
    s = summarize(ns)
    assert s["median_ms"] == pytest.approx(3.0)
    assert s["mean_ms"] == pytest.approx(22.0)
    assert s["min_ms"] == pytest.approx(1.0) and s["max_ms"] == pytest.approx(100.0)
    assert s["p90_ms"] == pytest.approx(61.6)   # rank 3.6 → 4 + 0.6·96
    assert s["p99_ms"] == pytest.approx(96.16)  # rank 3.96 → 4 + 0.96·96
    assert s["iters"] == 5
    assert s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]


def test_time_calls_counts_and_warmup():
    calls = []
    t = time_calls(lambda: calls.append(1), warmup=3, iters=7)
    assert len(t) == 7 and len(calls) == 10 and t.dtype == np.int64 and (t >= 0).all()
    t = time_calls(lambda: None, warmup=0, seconds=0.01, min_iters=5)
    assert len(t) >= 5
    with pytest.raises(ValueError):
        time_calls(lambda: None, seconds=1, iters=1)
    with pytest.raises(ValueError):
        time_calls(lambda: None)


def test_interleave_round_robin():
    order = []
    result = interleave({"a": lambda: None, "b": lambda: None, "c": lambda: None}, rounds=3, warmup=1, iters=4,
                        on_round=lambda r, name: order.append(name))
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # the starting candidate rotates
    for name in "abc":
        assert len(result.times_ns[name]) == 12 and len(result.round_medians_ms[name]) == 3
        assert result.summary(name)["rounds"] == 3
    assert result.ratio("a", "a") == pytest.approx(1.0)
