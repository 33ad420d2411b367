"""Paired comparisons (report/stats.py) against values computed here without scipy."""

import math
import warnings

import pytest

from mimkd_edge.report.stats import paired_comparison

T_975_DF2 = 4.302652729749464  # t quantile 0.975, 2 degrees of freedom (tables; closed form checked below)
T_975_DF4 = 2.7764451051977987  # t quantile 0.975, 4 degrees of freedom (tables)


def _t_density(x: float, df: int) -> float:
    """Student's t density, written out."""
    c = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    return c * (1 + x * x / df) ** (-(df + 1) / 2)


def _two_sided_p(t: float, df: int, steps: int = 20_000) -> float:
    """1 − 2·∫₀^|t| density, by Simpson's rule (the density is symmetric and integrates to 1)."""
    h = abs(t) / steps
    inner = sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, steps))
    integral = h / 3 * (_t_density(0, df) + inner + _t_density(abs(t), df))
    return 1 - 2 * integral


def test_the_quantile_constants():
    # df = 2 has a closed form: F(t) = 1/2 + t / (2·sqrt(t² + 2)), so F = 0.975 at t = sqrt(2q²/(1 − q²)), q = 0.95
    closed_form = math.sqrt(2 * 0.95**2 / (1 - 0.95**2))
    assert abs(T_975_DF2 - closed_form) < 1e-12 * closed_form
    assert _two_sided_p(T_975_DF2, 2) == pytest.approx(0.05, abs=1e-9)
    assert _two_sided_p(T_975_DF4, 4) == pytest.approx(0.05, abs=1e-9)


def test_level_by_hand_three_pairs():
    # differences 1, 2, 3: mean 2, SD 1, SE 1/√3
    r = paired_comparison([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    half = T_975_DF2 / math.sqrt(3)
    assert (r.n, r.mean, r.sd) == (3, pytest.approx(2.0), pytest.approx(1.0))
    assert r.ci == (pytest.approx(2 - half, rel=1e-12), pytest.approx(2 + half, rel=1e-12))
    # t = 2√3 with 2 df: two-sided p = 1 − t/sqrt(t² + 2) = 1 − sqrt(6/7) (the closed form above)
    assert r.p == pytest.approx(1 - math.sqrt(6 / 7), rel=1e-12)
    assert r.p == pytest.approx(_two_sided_p(2 * math.sqrt(3), 2), abs=1e-9)
    assert r.verdict == "level"  # the interval (−0.48, 4.48) holds 0


def test_ahead_and_behind_five_pairs():
    a, b = [70.5, 70.6, 70.7, 70.8, 70.9], [70.0] * 5  # differences 0.5 … 0.9: mean 0.7, SD sqrt(0.025)
    ahead = paired_comparison(a, b)
    sd = math.sqrt(0.025)
    half = T_975_DF4 * sd / math.sqrt(5)
    assert ahead.mean == pytest.approx(0.7) and ahead.sd == pytest.approx(sd)
    assert ahead.ci == (pytest.approx(0.7 - half), pytest.approx(0.7 + half))
    assert ahead.p == pytest.approx(_two_sided_p(0.7 / (sd / math.sqrt(5)), 4), abs=1e-9)
    assert ahead.verdict == "ahead" and ahead.ci[0] > 0
    behind = paired_comparison(b, a)
    assert behind.verdict == "behind" and behind.mean == pytest.approx(-0.7)
    assert behind.ci == (pytest.approx(-0.7 - half), pytest.approx(-0.7 + half))
    assert behind.p == pytest.approx(ahead.p)


def test_fewer_than_two_pairs():
    r = paired_comparison([73.5], [73.0])
    assert (r.n, r.mean, r.sd, r.ci, r.p) == (1, pytest.approx(0.5), None, None, None)
    assert r.verdict.startswith("level") and "n < 2" in r.verdict
    with pytest.raises(ValueError):
        paired_comparison([], [])
    with pytest.raises(ValueError):
        paired_comparison([1.0, 2.0], [1.0])


def test_identical_differences_give_no_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's "precision loss" / division warnings would fail here
        same = paired_comparison([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
        zero = paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.sd, same.ci, same.p, same.verdict) == (0.0, (1.0, 1.0), 0.0, "ahead")
    assert (zero.sd, zero.ci, zero.p, zero.verdict) == (0.0, (0.0, 0.0), 1.0, "level")
    below = paired_comparison([0.0, 0.0], [1.0, 1.0])
    assert (below.ci, below.p, below.verdict) == ((-1.0, -1.0), 0.0, "behind")
