"""Every MI estimator MIMKD uses, trained on correlated Gaussians of known mutual information.

X, Z ∈ R^D with coordinate correlation ρ: I(X; Z) = −(D/2)·ln(1 − ρ²) nats (D = 4: 0, 0.58, 3.32
for ρ = 0, 0.5, 0.9; the Gaussian channel's closed form). A lower bound's trained estimate must stay at or below the
truth, and a useful one must order the three cases. The global term is tested *with its memory*
(the path that once read 4.56 nats at ρ = 0.9): X plays the frozen teacher's vector of a sample,
Z the student's, a training set of `SAMPLES` pairs indexed like the loader's.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from mimkd_edge.methods import MethodContext, create_method, method_class
from mimkd_edge.methods.bounds import infonce_lower_bound, jsd_lower_bound
from mimkd_edge.methods.critics import ConvolveCritic, ProjectDotCritic
from mimkd_edge.schema import build

D, SAMPLES, BATCH, STEPS, K = 4, 8192, 64, 300, 512
RHOS = (0.0, 0.5, 0.9)
TOL = 0.05  # nats: the sampling noise of a 50-step average


def true_mi(rho: float) -> float:
    return -D / 2 * math.log(1 - rho**2)


def gaussian_pairs(rho: float, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, D, generator=g)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, D, generator=g)


def train(estimate, params, rho: float, seed: int = 0) -> float:
    """SGD on −estimate over batches of a fixed training set; the mean of the last 50 estimates."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, z = gaussian_pairs(rho, SAMPLES, g)
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    values = []
    for _ in range(STEPS):
        idx = torch.randint(0, SAMPLES, (BATCH,), generator=g)
        bound = estimate(x[idx], z[idx], idx)
        opt.zero_grad()
        (-bound).backward()
        opt.step()
        values.append(bound.item())
    return sum(values[-50:]) / 50


def global_term(memory: str, critic: str = "project"):
    ctx = MethodContext(num_classes=2, num_samples=SAMPLES, input_size=1, student_maps=((D, 1, 1),),
                        student_dim=D, teacher_maps=((D, 1, 1),), teacher_dim=D)
    opts = build(method_class("mimkd").Options, {"lambda_local": 0, "lambda_feature": 0, "critic_hidden": 32,
                                                 "embed_dim": 16, "nce_k": K, "memory": memory,
                                                 "global_critic": critic})
    return create_method("mimkd", opts, ctx).train()


@pytest.mark.parametrize("memory", ["bank", "queue"])
def test_global_infonce_with_memory_stays_below_true_mi_and_orders_rho(memory):
    estimates = {}
    for rho in RHOS:
        method = global_term(memory)
        estimates[rho] = train(method.global_bound, method.parameters(), rho)
        assert estimates[rho] <= true_mi(rho) + TOL, (rho, estimates)
    assert estimates[0.0] + 0.2 < estimates[0.5] < estimates[0.9] - 1.0, estimates
    assert estimates[0.9] > 2.5  # and it is tight enough to be useful (3.32 is the truth)


def test_global_estimate_during_training_equals_a_fresh_estimate():
    """The memory's negatives are as good as fresh ones: the trained critic scores fresh negatives
    (new samples, never stored) the same as it scored the memory's. A stale memory fails this."""
    method = global_term("bank")
    during = train(method.global_bound, method.parameters(), 0.9)
    g = torch.Generator().manual_seed(123)
    x, z = gaussian_pairs(0.9, 20 * BATCH + K, g)
    critic, t = method.global_critic, method.opts.nce_t
    with torch.no_grad():
        p_t = F.normalize(critic.proj_t(x), dim=-1)
        p_s = F.normalize(critic.proj_s(z), dim=-1)
        negs = p_t[20 * BATCH:]
        fresh = [infonce_lower_bound((p_t[i:i + BATCH] * p_s[i:i + BATCH]).sum(-1) / t, p_s[i:i + BATCH] @ negs.t() / t)
                 for i in range(0, 20 * BATCH, BATCH)]
    fresh_mean = torch.stack(fresh).mean().item()
    assert abs(during - fresh_mean) < 0.15, (during, fresh_mean)


def test_global_infonce_with_convolve_critic_and_memory_stays_below_true_mi():
    method = global_term("queue", critic="convolve")
    assert train(method.global_bound, method.parameters(), 0.9) <= true_mi(0.9) + TOL


def test_in_batch_infonce_stays_below_true_mi_and_orders_rho():
    """The global term's first step (and any in-batch use): the batch's other images as negatives."""
    estimates = {}
    for rho in RHOS:
        critic = ProjectDotCritic(D, D, hidden=32, out_dim=16)

        def estimate(x, z, idx, critic=critic):
            p_t, p_s = F.normalize(critic.proj_t(x), dim=-1), F.normalize(critic.proj_s(z), dim=-1)
            scores = p_s @ p_t.t() / 0.07
            off = ~torch.eye(len(x), dtype=torch.bool)
            return infonce_lower_bound(scores.diagonal(), scores[off].view(len(x), -1))

        estimates[rho] = train(estimate, critic.parameters(), rho)
        assert estimates[rho] <= true_mi(rho) + TOL, (rho, estimates)
    assert estimates[0.0] + 0.2 < estimates[0.5] < estimates[0.9] - 1.0, estimates


def test_jsd_bound_is_never_positive_and_orders_rho():
    """The local and feature terms' bound (eq. 2, one negative per positive). It is not in nats
    (its ceiling is 0, independence gives −ln 4), so only its sign and its order are checked."""
    estimates = {}
    for rho in RHOS:
        critic = ConvolveCritic(D, D, hidden=32)
        estimates[rho] = train(lambda x, z, idx, c=critic: jsd_lower_bound(*c.pair_scores(x, z)),
                               critic.parameters(), rho)
        assert estimates[rho] <= 0
    assert estimates[0.0] < -1.3 and estimates[0.0] + 0.03 < estimates[0.5] < estimates[0.9] - 0.2, estimates
