"""Lower bounds on mutual information from critic scores: JSD (eq. 2) and infoNCE (eq. 1).

Both functions take critic scores T, computed on positive pairs (drawn from the joint) and on
negative pairs (drawn from the product of the marginals), and return the bound as a scalar
float32 tensor. The loss is the bound's negative. Scores may have any shape: every element is
one pair, and the expectation is the mean over all elements. For maps of scores, shaped (N, H, W),
that mean is the average over locations of the per-location bound, averaged over the batch —
the 1/m² Σ_ij of eqs. 4 and 5 (every location has as many pairs as any other).

What the numbers mean
---------------------
- JSD (Deep InfoMax's form, eq. 2): ``E_pos[-softplus(-T)] - E_neg[softplus(T)]``. Its supremum
  over critics is ``2·JSD(joint ‖ marginals) - log 4`` ∈ [-log 4, 0]: -1.386 for independent
  variables, rising towards 0 as they become more dependent. Any estimate is ≤ 0; a critic that
  scores everything 0 gives exactly -log 4, and a poor critic can give less. It is monotone in MI
  but is not itself in nats of MI; it does not depend on the number of negatives.
- infoNCE (van den Oord et al.; Poole et al. 2019, "I_NCE"): for each positive score and its K
  negative scores, ``log(K+1) - CE`` with CE the softmax cross-entropy of picking the positive
  among the K+1 scores: ``mean(T_pos - logsumexp([T_pos, T_neg_1..K])) + log(K+1)``. It is a
  lower bound on MI in nats, and can never exceed log(K+1) (the log-softmax term is ≤ 0). Eq. 1
  of the paper omits the constant log(K+1); it does not change the gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def jsd_lower_bound(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``E_pos[-softplus(-T)] - E_neg[softplus(T)]``, in float32.

    `pos_scores` and `neg_scores` may have different shapes (e.g. one negative per positive, or
    all N·(N−1) cross pairs): each side is averaged over all of its elements.
    """
    if pos_scores.numel() == 0 or neg_scores.numel() == 0:
        raise ValueError("jsd_lower_bound: needs at least one positive and one negative score")
    pos = pos_scores.float()
    neg = neg_scores.float()
    return (-F.softplus(-pos)).mean() - F.softplus(neg).mean()


def infonce_lower_bound(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Eq. 1 with its constant: ``mean(T_pos - logsumexp([T_pos, T_neg])) + log(K+1)``, in float32.

    `pos_scores` has any shape S (one positive per anchor); `neg_scores` has shape S + (K,): the
    K negative scores of each anchor, last. The result is ≤ log(K+1) whatever the scores are.
    """
    if neg_scores.dim() != pos_scores.dim() + 1 or neg_scores.shape[:-1] != pos_scores.shape:
        raise ValueError(f"infonce_lower_bound: negatives must be shaped positives + (K,), got "
                         f"{tuple(pos_scores.shape)} and {tuple(neg_scores.shape)}")
    k = neg_scores.shape[-1]
    pos = pos_scores.float()
    logits = torch.cat([pos.unsqueeze(-1), neg_scores.float()], dim=-1)
    log_p_pos = pos - torch.logsumexp(logits, dim=-1)  # ≤ 0: log-softmax of the positive
    return log_p_pos.mean() + math.log(k + 1)


def derangement(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The permutation i → i−1 (mod n): every image gets a different image's teacher as its negative. Fixed,
    never drawn (it takes nothing from the random generators): every call on a batch of n pairs the same
    images, so two estimates of one batch (say, every location against sampled ones) differ only in what
    they score."""
    if n < 2:
        raise ValueError(f"negative pairs need a batch of at least 2 images, got {n}")
    return torch.roll(torch.arange(n, device=device), 1)
