"""Golden values for the JSD (eq. 2) and infoNCE (eq. 1) bounds, and the infoNCE ceiling."""

import math

import pytest
import torch

from mimkd_edge.methods.bounds import derangement, infonce_lower_bound, jsd_lower_bound

LN2, LN3 = math.log(2), math.log(3)


def test_jsd_golden():
    # pos = [0, ln 3]:  -softplus(-0) = -ln 2;  -softplus(-ln 3) = -ln(1 + 1/3) = -ln(4/3)
    #   E_pos = -(ln 2 + ln 4/3) / 2 = -ln(8/3) / 2
    # neg = [0, -ln 3]: softplus(0) = ln 2;  softplus(-ln 3) = ln(4/3)
    #   E_neg = ln(8/3) / 2
    # I = E_pos - E_neg = -ln(8/3) = -0.980829...
    pos = torch.tensor([0.0, LN3])
    neg = torch.tensor([0.0, -LN3])
    assert jsd_lower_bound(pos, neg).item() == pytest.approx(-math.log(8 / 3), abs=1e-6)


def test_jsd_untrained_critic_is_minus_log4():
    # T = 0 everywhere: -ln 2 - ln 2 = -ln 4, the value for independent variables
    z = torch.zeros(3, 5, 5)
    assert jsd_lower_bound(z, z).item() == pytest.approx(-math.log(4), abs=1e-6)


def test_jsd_shapes_may_differ_and_maps_average_locations():
    # pos (2,) = [ln 3, ln 3]: -ln(4/3) each;  neg (2, 3) all ln 3: softplus(ln 3) = ln 4 each
    #   I = -ln(4/3) - ln 4 = -ln(16/3) = -1.673976
    pos = torch.full((2,), LN3)
    neg = torch.full((2, 3), LN3)
    assert jsd_lower_bound(pos, neg).item() == pytest.approx(-math.log(16 / 3), abs=1e-6)
    # Maps (N, H, W): the bound is the average over locations of the per-location bounds (eqs. 4, 5).
    g = torch.Generator().manual_seed(1)
    p, q = torch.randn(3, 4, 4, generator=g), torch.randn(3, 4, 4, generator=g)
    per_location = torch.stack([jsd_lower_bound(p[:, i, j], q[:, i, j]) for i in range(4) for j in range(4)])
    assert jsd_lower_bound(p, q).item() == pytest.approx(per_location.mean().item(), abs=1e-6)


def test_infonce_golden():
    # anchor 1: pos = ln 3, neg = [0, 0] (K = 2): softmax of pos = 3 / (3 + 1 + 1) = 3/5
    #   log(3/5) + log(K + 1) = ln(3/5) + ln 3 = ln(9/5)
    # anchor 2: pos = 0, neg = [ln 3, 0]: softmax of pos = 1 / (1 + 3 + 1) = 1/5 → ln(1/5) + ln 3 = ln(3/5)
    # mean = (ln(9/5) + ln(3/5)) / 2 = ln(27/25) / 2 = 0.038481
    pos = torch.tensor([LN3, 0.0])
    neg = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    assert infonce_lower_bound(pos, neg).item() == pytest.approx(math.log(27 / 25) / 2, abs=1e-6)
    # all scores equal: softmax = 1/(K+1) → -ln 4 + ln 4 = 0 (K = 3)
    assert infonce_lower_bound(torch.zeros(5), torch.zeros(5, 3)).item() == pytest.approx(0.0, abs=1e-6)


def test_infonce_never_exceeds_log_k_plus_1():
    g = torch.Generator().manual_seed(0)
    for k in (1, 7, 4096):
        ceiling = math.log(k + 1)
        for scale in (0.1, 10.0, 1e4):
            pos = torch.randn(16, generator=g) * scale
            neg = torch.randn(16, k, generator=g) * scale
            assert infonce_lower_bound(pos, neg).item() <= ceiling + 1e-5
        # extreme: the positive dominates → exactly the ceiling, finite
        top = infonce_lower_bound(torch.full((4,), 1e30), torch.full((4, k), -1e30))
        assert top.item() == pytest.approx(ceiling, abs=1e-5)
        # extreme the other way: very negative, still finite (stable logsumexp)
        low = infonce_lower_bound(torch.full((4,), -1e4), torch.full((4, k), 1e4))
        assert torch.isfinite(low) and low.item() < -1e3


def test_infonce_any_score_shape_and_float32():
    pos = torch.zeros(2, 3, 3, dtype=torch.bfloat16)
    neg = torch.zeros(2, 3, 3, 5, dtype=torch.bfloat16)
    out = infonce_lower_bound(pos, neg)
    assert out.dtype == torch.float32 and out.item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="negatives must be shaped"):
        infonce_lower_bound(torch.zeros(4), torch.zeros(3, 2))
    assert jsd_lower_bound(pos, neg).dtype == torch.float32


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 64):
        p = derangement(n)
        assert sorted(p.tolist()) == list(range(n))
        assert (p != torch.arange(n)).all()
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1)


def test_derangement_is_the_fixed_shift_and_draws_nothing():
    state = torch.get_rng_state()
    assert derangement(5).tolist() == [4, 0, 1, 2, 3] and torch.equal(derangement(5), derangement(5))
    assert torch.equal(torch.get_rng_state(), state)
