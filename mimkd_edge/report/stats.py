"""Paired comparisons of two methods over seeds: the mean difference with its confidence interval.

A seed gives both methods the same initialisation, data order and augmentation, so the per-seed
differences are the sample; the mean ± SD of those differences describes the seeds but is no
interval for the true difference. With three seeds the 95 % interval reaches about 2.5 SD to each side
of the mean (t with 2 degrees of freedom, over √3): a table must show it before it calls a method ahead.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats as _scipy

CONFIDENCE = 0.95  # the tables' interval


@dataclass(frozen=True)
class PairedDiff:
    """`paired_comparison`'s result: differences are first − second. `ci` and `p` are None below
    two pairs (no spread to judge against); `verdict` reads the interval against 0."""
    n: int
    mean: float
    sd: float | None  # sample SD of the differences (n − 1)
    ci: tuple[float, float] | None  # Student-t interval for the mean difference
    p: float | None  # two-sided paired t test of "no difference"
    verdict: str  # "ahead", "behind", "level", or "level (n < 2)"
    confidence: float = CONFIDENCE


def paired_comparison(a: list[float], b: list[float], confidence: float = CONFIDENCE) -> PairedDiff:
    """Compare `a` with `b`, paired by position (one seed each): mean of a − b, the `confidence`
    interval mean ± t(1 − α/2, n − 1)·SD/√n and the paired-t p-value. Identical differences (SD 0)
    give the point as interval and p 0 (1 when they are all 0) instead of scipy's NaN."""
    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("no pairs to compare")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n, mean = len(diffs), statistics.fmean(diffs)
    if n < 2:
        return PairedDiff(n, mean, None, None, None, "level (n < 2)", confidence)
    sd = statistics.stdev(diffs)
    if sd == 0:
        return PairedDiff(n, mean, sd, (mean, mean), 0.0 if mean else 1.0, _verdict(mean, mean), confidence)
    se = sd / math.sqrt(n)
    half = float(_scipy.t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = 2 * _scipy.t.sf(abs(mean) / se, n - 1)
    return PairedDiff(n, mean, sd, (mean - half, mean + half), float(p), _verdict(mean - half, mean + half),
                      confidence)


def _verdict(low: float, high: float) -> str:
    """Ahead or behind only when the whole interval is on one side of 0."""
    if low > 0:
        return "ahead"
    if high < 0:
        return "behind"
    return "level"
