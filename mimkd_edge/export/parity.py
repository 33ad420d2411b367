"""Proving an artifact against the PyTorch model: parity on real test images, accuracy on the split.

Parity set: N (default 256) images of the run's test split at evenly spaced indices
(i * len(test) // N: fixed, and every class is in it even when the split is stored class by class,
as image folders are; its first 256 images would all be one class), prepared the way the artifact
expects, run through PyTorch (eval mode, fp32) and through the artifact. Checked at two batch sizes
(all N at once, and batch 1 on the first image) so a batch size baked into the graph cannot pass.

Thresholds:
- fp32 artifacts: max |Δ logits| ≤ 1e-4 (FP32_MAX_ABS_DIFF), else the artifact fails.
- fp16 / int8 artifacts: top-1 agreement with PyTorch ≥ 90 % (MIN_TOP1_AGREEMENT, in percent) on
  the parity set, else the artifact fails; max |Δ| and the accuracy delta are reported, not enforced.
An artifact that fails is not published (export/pipeline.py publishes the others and says why).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UserError
from ..runtime.accuracy import EVAL_BATCH
from ..runtime.session import Session
from .plan import MIN_TOP1_AGREEMENT, PARITY_IMAGES

FP32_MAX_ABS_DIFF = 1e-4


def parity_indices(n_total: int, n: int = PARITY_IMAGES) -> np.ndarray:
    """`n` evenly spaced indices into a split of `n_total` images (all of them when n ≥ n_total)."""
    n = min(n, n_total)
    return (np.arange(n, dtype=np.int64) * n_total) // max(1, n)


def logits(session: Session, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    return np.concatenate([session.run(x[i: i + batch_size]) for i in range(0, len(x), batch_size)])


@dataclass
class Parity:
    images: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # percent of parity images whose top-1 class matches PyTorch's
    batch1_max_abs_diff: float
    criterion: str
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def measure_parity(reference: np.ndarray, session: Session, x: np.ndarray, precision: str, *,
                   fp32_tol: float = FP32_MAX_ABS_DIFF, min_agreement: float = MIN_TOP1_AGREEMENT) -> Parity:
    """Compare `session` with the PyTorch `reference` logits on the prepared parity batch `x`."""
    out = logits(session, x, batch_size=len(x))
    if out.shape != reference.shape:
        raise UserError(f"{session.source}: logits of shape {out.shape}, PyTorch gives {reference.shape}")
    one = session.run(x[:1])
    diff = np.abs(out.astype(np.float64) - reference)
    batch1 = float(np.abs(one.astype(np.float64) - reference[:1]).max())
    agree = 100.0 * float((out.argmax(1) == reference.argmax(1)).mean())
    max_diff = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    if precision == "fp32":
        criterion = f"max |Δ logits| ≤ {fp32_tol:g} at batch {len(x)} and batch 1"
        passed = max(max_diff, batch1) <= fp32_tol
    else:
        criterion = f"top-1 agreement ≥ {min_agreement:g}%"
        passed = agree >= min_agreement
    return Parity(len(x), max_diff, float(diff.mean()), agree, batch1, criterion, passed)


def failure_reason(parity: Parity, precision: str) -> str | None:
    """One line naming the figure and the threshold a failed parity check missed; None when it passed."""
    if parity.passed:
        return None
    if precision == "fp32":
        worst = max(parity.max_abs_diff, parity.batch1_max_abs_diff)
        return (f"FP32 parity failed: max |Δ logits| = {worst:.3g} against PyTorch on {parity.images} "
                f"test images ({parity.criterion})")
    return (f"{precision.upper()} parity failed: top-1 agreement with PyTorch {parity.top1_agreement:.1f}% "
            f"on {parity.images} test images ({parity.criterion})")
