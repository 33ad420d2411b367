"""The baselines' losses on tensors small enough to work out by hand (values derived in the
comments, or from a direct formula written here, never by running the code under test)."""

import math

import torch

from mimkd_edge.methods import MethodContext, create_method, method_class
from mimkd_edge.methods.at import at_loss
from mimkd_edge.methods.vid import VIDRegressor
from mimkd_edge.schema import build


def test_attention_transfer_by_hand():
    # student: 2 channels of ones over 2 locations → mean_c x² = [1, 1] → attention [1/√2, 1/√2]
    # teacher: 1 channel [2, 0] → [4, 0] → attention [1, 0]
    # loss = mean([(1/√2 − 1)², (1/√2)²]) = (2 − √2) / 2 = 1 − √2/2
    s = torch.ones(1, 2, 1, 2)
    t = torch.tensor([[[[2.0, 0.0]]]])
    assert abs(at_loss(s, t).item() - (1 - math.sqrt(2) / 2)) < 1e-6


def test_vid_negative_log_likelihood_by_hand():
    # all weights 1 and one channel: μ(s) = relu(relu(s)) = s = 2; target t = 5; σ² = 5 (the init)
    # nll = ½ ((2 − 5)² / 5 + ln 5) = 0.9 + ½ ln 5
    reg = VIDRegressor(1, 1, hidden=1, init_var=5.0)
    with torch.no_grad():
        for m in reg.mean:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(1.0)
    nll = reg.nll(torch.full((1, 1, 1, 1), 2.0), torch.full((1, 1, 1, 1), 5.0))
    assert abs(reg.variance().item() - 5.0) < 1e-5
    assert abs(nll.item() - (0.9 + 0.5 * math.log(5))) < 1e-5


def test_crd_nce_loss_from_its_definition():
    """CRD's NCE loss, computed directly in probability space from its definition (Tian et al. eq. 18;
    the reference code's NCECriterion): P = exp(s/τ)/Z with Z = mean(exp(s/τ))·n_data from the first
    batch, P_n = 1/n_data, m = K; loss = −[Σ log P⁺/(P⁺ + mP_n) + Σ log mP_n/(P⁻ + mP_n)] / N."""
    ctx = MethodContext(num_classes=10, num_samples=64, input_size=32, student_maps=((8, 4, 4),), student_dim=8,
                        teacher_maps=((8, 4, 4),), teacher_dim=8)
    crd = create_method("crd", build(method_class("crd").Options, {"feat_dim": 4, "nce_k": 2}), ctx)
    logits = torch.tensor([[2.0, 0.5, -1.0], [1.0, 1.5, 0.0]])  # N = 2 anchors, positive then K = 2
    n_data, k = crd.memory.num_samples, 2
    flat = [v for row in logits.tolist() for v in row]
    z = sum(math.exp(v) for v in flat) / len(flat) * n_data
    mpn = k / n_data
    total = 0.0
    for row in logits.tolist():
        p = [math.exp(v) / z for v in row]
        total += math.log(p[0] / (p[0] + mpn)) + sum(math.log(mpn / (q + mpn)) for q in p[1:])
    expected = -total / len(logits)
    assert abs(crd._loss(logits, 0).item() - expected) < 1e-5
    # Z is kept from the first batch: a second batch is scored against the same Z
    again = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p0 = 1.0 / z
    expected2 = -(2 * (math.log(p0 / (p0 + mpn)) + 2 * math.log(mpn / (p0 + mpn)))) / 2
    assert abs(crd._loss(again, 0).item() - expected2) < 1e-5
