"""KD + LS, DKD and MIMKD's logit term on logits small enough to work out by hand: every expected
value comes from a formula written here in plain Python (probability space, no torch), never from
the code under test."""

import math

import pytest
import torch

from mimkd_edge.methods import MethodContext, create_method, method_class
from mimkd_edge.methods.logits import dkd_terms, kd_loss, standardize_logits
from mimkd_edge.models.features import Features
from mimkd_edge.schema import build

S_LOGITS = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
T_LOGITS = [[0.0, 0.0, 6.0], [3.0, 1.0, -2.0]]
LABELS = [2, 0]


def softmax(z, temperature=1.0):
    e = [math.exp(v / temperature) for v in z]
    return [v / sum(e) for v in e]


def kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


def zscore(z):
    mean = sum(z) / len(z)
    std = math.sqrt(sum((v - mean) ** 2 for v in z) / (len(z) - 1))  # unbiased, as the LS paper's code
    return [(v - mean) / (std + 1e-7) for v in z]


def features(logits):
    x = torch.tensor(logits)
    return Features(x, [torch.zeros(len(logits), 4, 2, 2)], torch.zeros(len(logits), 4))


def test_standardisation_by_hand():
    # [1, 2, 3]: mean 2, unbiased std 1 → [-1, 0, 1]; [0, 0, 6]: mean 2, std √12 → [-1/√3, -1/√3, 2/√3]
    z = standardize_logits(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]]))
    r3 = 1 / math.sqrt(3)
    assert torch.allclose(z, torch.tensor([[-1.0, 0.0, 1.0], [-r3, -r3, 2 * r3]]), atol=1e-6)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_loss_against_its_formula(standardize, temperature):
    prep = zscore if standardize else (lambda z: z)
    expected = sum(kl(softmax(prep(t), temperature), softmax(prep(s), temperature))
                   for s, t in zip(S_LOGITS, T_LOGITS, strict=True)) / 2 * temperature**2
    got = kd_loss(torch.tensor(S_LOGITS), torch.tensor(T_LOGITS), temperature, standardize)
    assert abs(got.item() - expected) < 1e-5


def dkd_by_hand(s, t, y, temperature, prep=lambda z: z):
    ps, pt = softmax(prep(s), temperature), softmax(prep(t), temperature)
    tckd = kl([pt[y], 1 - pt[y]], [ps[y], 1 - ps[y]])
    rest_s = softmax([v for i, v in enumerate(prep(s)) if i != y], temperature)
    rest_t = softmax([v for i, v in enumerate(prep(t)) if i != y], temperature)
    return tckd * temperature**2, kl(rest_t, rest_s) * temperature**2


@pytest.mark.parametrize("standardize", [False, True])
def test_dkd_terms_against_their_definition(standardize):
    prep = zscore if standardize else (lambda z: z)
    hand = [dkd_by_hand(s, t, y, 4.0, prep) for s, t, y in zip(S_LOGITS, T_LOGITS, LABELS, strict=True)]
    tckd, nckd = dkd_terms(torch.tensor(S_LOGITS), torch.tensor(T_LOGITS), torch.tensor(LABELS), 4.0, standardize)
    assert abs(tckd.item() - sum(h[0] for h in hand) / 2) < 1e-5
    assert abs(nckd.item() - sum(h[1] for h in hand) / 2) < 1e-5


def test_kd_is_tckd_plus_weighted_nckd_per_sample():
    # DKD's identity (Zhao et al. eq. 5): KL(p_t ‖ p_s) = TCKD + (1 − p_t[y]) · NCKD, sample by sample
    for s, t, y in zip(S_LOGITS, T_LOGITS, LABELS, strict=True):
        tckd, nckd = dkd_terms(torch.tensor([s]), torch.tensor([t]), torch.tensor([y]), 1.0)
        p_t = softmax(t)[y]
        assert abs(kl(softmax(t), softmax(s)) - (tckd.item() + (1 - p_t) * nckd.item())) < 1e-5


def test_dkd_survives_a_confident_teacher():
    # p_t[y] = 1 − 1e-40 in float32: the binary "others" mass underflows in probability space, not in log space
    tckd, nckd = dkd_terms(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 100.0]]), torch.tensor([2]), 1.0)
    assert torch.isfinite(tckd) and torch.isfinite(nckd)
    assert abs(tckd.item() - math.log(3)) < 1e-4  # KL([1, 0] ‖ [1/3, 2/3]) = log 3


def ctx(total_steps=0):
    return MethodContext(num_classes=3, num_samples=8, input_size=2, student_maps=((4, 2, 2),), student_dim=4,
                         teacher_maps=((4, 2, 2),), teacher_dim=4, total_steps=total_steps)


def method(name, table, total_steps=0):
    return create_method(name, build(method_class(name).Options, table), ctx(total_steps))


def ce_by_hand(logits, labels):
    return sum(-math.log(softmax(z)[y]) for z, y in zip(logits, labels, strict=True)) / len(labels)


def test_kd_with_standardisation_takes_the_reference_settings():
    kd = method("kd", {"standardize": True})
    assert (kd.opts.temperature, kd.opts.kd_weight, kd.opts.alpha) == (2.0, 9.0, 0.1)
    out = kd(features(S_LOGITS), features(T_LOGITS), torch.tensor(LABELS))
    kd_hand = sum(kl(softmax(zscore(t), 2.0), softmax(zscore(s), 2.0))
                  for s, t in zip(S_LOGITS, T_LOGITS, strict=True)) / 2 * 4
    assert abs(out.total.item() - (0.1 * ce_by_hand(S_LOGITS, LABELS) + 9 * kd_hand)) < 1e-4


def test_kd_defaults_unchanged_without_standardisation():
    o = method("kd", {}).opts
    assert (o.alpha, o.temperature, o.kd_weight, o.standardize) == (0.1, 4.0, pytest.approx(0.9), False)


def test_dkd_total_by_hand_after_its_ramp():
    dkd = method("dkd", {}, total_steps=0)  # no schedule known: no ramp
    assert (dkd.opts.alpha, dkd.opts.beta, dkd.opts.temperature, dkd.opts.ce_weight) == (1.0, 8.0, 4.0, 1.0)
    hand = [dkd_by_hand(s, t, y, 4.0) for s, t, y in zip(S_LOGITS, T_LOGITS, LABELS, strict=True)]
    expected = ce_by_hand(S_LOGITS, LABELS) + sum(1 * a + 8 * b for a, b in hand) / 2
    out = dkd(features(S_LOGITS), features(T_LOGITS), torch.tensor(LABELS))
    assert abs(out.total.item() - expected) < 1e-4


def test_dkd_with_standardisation_takes_the_ls_release_weights():
    o = method("dkd", {"standardize": True}).opts
    assert (o.alpha, o.beta, o.temperature) == (9.0, 81.0, 4.0)


def test_dkd_ramps_in_over_its_share_of_the_schedule_and_resumes_it():
    # 240 steps in all: the ramp is 20 steps long (20 of 240), weight k/20 at the k-th training step
    dkd = method("dkd", {}, total_steps=240)
    s, t, y = features(S_LOGITS), features(T_LOGITS), torch.tensor(LABELS)
    full = sum(a + 8 * b for a, b in (dkd_by_hand(*args, 4.0) for args in zip(S_LOGITS, T_LOGITS, LABELS,
                                                                            strict=True))) / 2
    first = dkd(s, t, y)
    assert abs((first.losses["tckd"] + first.losses["nckd"]).item() - full / 20) < 1e-5
    state = dkd.state_dict()
    again = method("dkd", {}, total_steps=240)
    again.load_state_dict(state)  # a resumed run continues the ramp where it stopped
    second = again(s, t, y)
    assert abs((second.losses["tckd"] + second.losses["nckd"]).item() - 2 * full / 20) < 1e-5
    dkd.eval()
    assert abs(sum(dkd(s, t, y).losses[k] for k in ("tckd", "nckd")).item() - full / 20) < 1e-5  # eval: no step


def mimkd(table):
    base = {"lambda_global": 0.0, "lambda_local": 0.0, "lambda_feature": 0.0, "critic_hidden": 4}
    return method("mimkd", {**base, **table})


def test_mimkd_paper_defaults_have_no_logit_term():
    out = mimkd({})(features(S_LOGITS), features(T_LOGITS), torch.tensor(LABELS))
    assert set(out.losses) == {"ce"}


@pytest.mark.parametrize("extra,reference", [
    ({"alpha": 0.1}, ("kd", {})),
    ({"alpha": 0.1, "logit_standardize": True}, ("kd", {"standardize": True})),
    ({"logit_term": "dkd"}, ("dkd", {})),
    ({"logit_term": "dkd", "logit_standardize": True}, ("dkd", {"standardize": True})),
])
def test_mimkd_logit_term_equals_the_method_it_names(extra, reference):
    s, t, y = features(S_LOGITS), features(T_LOGITS), torch.tensor(LABELS)
    ours = mimkd(extra)(s, t, y)
    theirs = method(*reference)(s, t, y)
    assert set(ours.losses) == set(theirs.losses)
    for k in ours.losses:
        assert abs(ours.losses[k].item() - theirs.losses[k].item()) < 1e-6, k
