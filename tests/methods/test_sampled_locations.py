"""MIMKD's cheap path (issue 17): scoring a random subset of locations is the exact critic at those
locations, its mean over draws is the full bound (unbiased, value and gradient), and bf16 critics
leave the bounds in fp32."""

import pytest
import torch

from mimkd_edge.methods import MethodContext, create_method, method_class
from mimkd_edge.methods.bounds import derangement, jsd_lower_bound
from mimkd_edge.methods.critics import (ConvolveCritic, ProjectDotCritic, location_strata, sample_locations,
                                        take_locations)
from mimkd_edge.models.features import Features
from mimkd_edge.schema import build


def test_sample_locations_draws_distinct_locations_per_image():
    torch.manual_seed(0)
    idx = sample_locations(5, 4, 6, 7)
    assert idx.shape == (5, 7) and idx.min() >= 0 and idx.max() < 24
    assert all(len(set(row.tolist())) == 7 for row in idx)
    assert not torch.equal(idx[0], idx[1])  # each image its own subset
    assert sample_locations(5, 4, 6, 0) is None and sample_locations(5, 4, 6, 24) is None


def test_sample_locations_is_uniform_over_the_map():
    torch.manual_seed(0)
    counts = torch.bincount(sample_locations(4000, 3, 3, 2).flatten(), minlength=9).float()
    expected = 4000 * 2 / 9
    assert ((counts - expected).abs() / expected).max() < 0.08


def test_stratified_draw_takes_one_location_in_each_tile():
    torch.manual_seed(0)
    assert location_strata(16, 16, 32) == (2, 4) and location_strata(8, 8, 32) == (1, 2)
    idx = sample_locations(50, 8, 12, 8, stratified=True)  # 8 tiles of 4×3
    assert location_strata(8, 12, 8) == (4, 3)
    rows, cols = idx // 12, idx % 12
    tiles = (rows // 4) * 4 + cols // 3
    assert torch.equal(tiles, torch.arange(8).expand(50, 8))  # tile j holds the j-th draw: one each
    assert len(set(map(tuple, idx.tolist()))) > 40  # and the place inside a tile is drawn


def test_stratified_draw_gives_every_location_the_same_chance():
    torch.manual_seed(0)
    counts = torch.bincount(sample_locations(4000, 4, 6, 6, stratified=True).flatten(), minlength=24).float()
    expected = 4000 * 6 / 24
    assert ((counts - expected).abs() / expected).max() < 0.08


def test_stratified_draw_varies_less_on_a_smooth_map():
    """Why it exists: neighbours look alike, so one draw per tile estimates the map's mean more
    steadily than L draws anywhere (same mean: both unbiased)."""
    torch.manual_seed(0)
    ramp = torch.linspace(0, 1, 16)
    field = (ramp[:, None] + ramp[None, :]).flatten()  # a smooth 16×16 map
    spread = {}
    for stratified in (False, True):
        means = field[sample_locations(4000, 16, 16, 8, stratified=stratified)].mean(1)
        assert abs(float(means.mean()) - float(field.mean())) < 0.01
        spread[stratified] = float(means.std())
    assert spread[True] < 0.5 * spread[False]


def test_stratified_draw_falls_back_to_uniform_without_equal_tiles():
    assert location_strata(7, 7, 32) is None and location_strata(4, 6, 5) is None
    torch.manual_seed(0)
    a = sample_locations(3, 7, 7, 32, stratified=True)
    torch.manual_seed(0)
    assert torch.equal(a, sample_locations(3, 7, 7, 32))


def test_take_locations_reads_channel_last_entries():
    x = torch.randn(2, 3, 4, 5)
    idx = torch.tensor([[0, 7, 19], [3, 3 + 5, 12]])
    got = take_locations(x, idx)
    assert got.shape == (2, 3, 3)
    for n in range(2):
        for j, flat in enumerate(idx[n].tolist()):
            torch.testing.assert_close(got[n, j], x[n, :, flat // 5, flat % 5])
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(take_locations(cl, idx), got)


@pytest.mark.parametrize("critic_cls", [ConvolveCritic, ProjectDotCritic])
@pytest.mark.parametrize("t_shape", [(6, 4, 4), (7,)], ids=["feature-map", "local-vector"])
def test_sampled_scores_are_the_full_scores_at_those_locations(critic_cls, t_shape):
    """Positive (t_i, s_i) and negative (t_{perm(i)}, s_i) pairs at the same location l."""
    torch.manual_seed(0)
    critic = critic_cls(t_shape[0], 3, 16)
    t, s = torch.randn(4, *t_shape), torch.randn(4, 3, 4, 4)
    full_pos, full_neg = critic.pair_scores(t, s)
    idx = sample_locations(4, 4, 4, 5)
    pos, neg = critic.pair_scores(t, s, locations=idx)
    assert pos.shape == neg.shape == (4, 5)
    torch.testing.assert_close(pos, full_pos.flatten(1).gather(1, idx), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(neg, full_neg.flatten(1).gather(1, idx), rtol=1e-5, atol=1e-5)
    # and the negative is indeed the previous image's teacher (not another location's)
    ref = critic(t[derangement(4)], s).flatten(1).gather(1, idx)
    torch.testing.assert_close(neg, ref, rtol=1e-5, atol=1e-5)


def test_sampled_locations_refuse_all_negatives():
    critic = ConvolveCritic(6, 3, 8)
    with pytest.raises(ValueError, match="derangement"):
        critic.pair_scores(torch.randn(3, 6, 2, 2), torch.randn(3, 3, 2, 2), "all",
                           locations=torch.zeros(3, 1, dtype=torch.long))


@pytest.mark.parametrize("stratified", [False, True], ids=["uniform", "stratified"])
def test_sampled_bound_is_unbiased_in_value_and_gradient(stratified):
    """Mean over many draws of the sampled JSD bound (and of its gradient on the critic) = the
    full-map bound, within a few standard errors of the draws."""
    torch.manual_seed(0)
    critic = ConvolveCritic(6, 3, 16)
    t = torch.randn(8, 6, 6, 6)
    s = 0.8 * t[:, :3] + 0.6 * torch.randn(8, 3, 6, 6)  # dependent pairs: the bound is informative

    def value_and_grad(idx):
        critic.zero_grad()
        bound = jsd_lower_bound(*critic.pair_scores(t, s, locations=idx))
        bound.backward()
        return bound.detach(), critic.second.weight.grad.clone()

    full, full_grad = value_and_grad(None)
    draws = [value_and_grad(sample_locations(8, 6, 6, 4, stratified=stratified)) for _ in range(600)]
    values = torch.stack([v for v, _ in draws])
    grads = torch.stack([g for _, g in draws])
    stderr = values.std() / len(draws) ** 0.5
    assert abs(values.mean() - full) < 4 * stderr + 1e-6
    assert values.std() > 0  # the draws did differ
    grad_err = (grads.mean(0) - full_grad).norm() / full_grad.norm()
    single_err = (grads[0] - full_grad).norm() / full_grad.norm()
    assert grad_err < 0.1 and grad_err < single_err / 5  # averaging draws converges to the full gradient


def _mimkd(table):
    maps = ((8, 8, 8), (16, 4, 4))
    ctx = MethodContext(num_classes=10, num_samples=64, input_size=32, student_maps=maps, student_dim=12,
                        teacher_maps=maps, teacher_dim=16)
    opts = build(method_class("mimkd").Options, {"critic_hidden": 16, "embed_dim": 8, "nce_k": 32, **table})
    return create_method("mimkd", opts, ctx)


def _features(n=4, seed=0, dim=16):
    """Teacher-shaped features (vector 16); dim=12 for the student."""
    g = torch.Generator().manual_seed(seed)
    return Features(torch.randn(n, 10, generator=g), [torch.randn(n, 8, 8, 8, generator=g),
                                                      torch.randn(n, 16, 4, 4, generator=g)],
                    torch.randn(n, dim, generator=g))


@pytest.mark.parametrize("sampling", ["uniform", "stratified"])
def test_mimkd_with_locations_runs_a_step_and_is_refused_with_all_negatives(sampling):
    torch.manual_seed(0)
    method = _mimkd({"locations": 4, "location_sampling": sampling})
    s = _features(seed=1, dim=12)
    for m in s.maps:
        m.requires_grad_(True)
    out = method(s, _features(), torch.randint(0, 10, (4,)), torch.arange(4))
    out.total.backward()
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in s.maps)
    with pytest.raises(ValueError, match="derangement"):
        _mimkd({"locations": 4, "negatives": "all"})


@pytest.mark.parametrize("feature_locations, expected", [(None, [(16, 4), (64, 4), (16, 4)]),
                                                         (0, [(16, 4), (64, 0), (16, 0)]),
                                                         (8, [(16, 4), (64, 8), (16, 8)])])
def test_feature_locations_set_the_feature_terms_L_alone(monkeypatch, feature_locations, expected):
    """(H·W, L) asked of the draw: the local term (on the 4×4 map) draws `locations`, each feature
    pair (8×8, 4×4) `feature_locations` (none: `locations` too; 0: every location, the exact term)."""
    from mimkd_edge.methods import mimkd as mimkd_module
    asked = []

    def recording(n, h, w, count, *args, **kwargs):
        asked.append((h * w, count))
        return sample_locations(n, h, w, count, *args, **kwargs)

    monkeypatch.setattr(mimkd_module, "sample_locations", recording)
    torch.manual_seed(0)
    method = _mimkd({"locations": 4, "feature_locations": feature_locations})
    method(_features(seed=1, dim=12), _features(), torch.randint(0, 10, (4,)), torch.arange(4))
    assert asked == expected
    with pytest.raises(ValueError, match="derangement"):
        _mimkd({"feature_locations": 4, "negatives": "all"})


def test_feature_pair_bounds_are_the_feature_term_pair_by_pair():
    """The public per-pair bounds: in eval mode their mean is the forward's feature estimate and each is its
    mi_feature_k, at every location; with `locations` they are the sampled estimate of the same pairs."""
    torch.manual_seed(0)
    method = _mimkd({}).eval()
    s, t, y = _features(seed=1, dim=12), _features(), torch.randint(0, 10, (4,))
    with torch.no_grad():
        est = method(s, t, y, torch.arange(4)).estimates
        per_pair = method.feature_pair_bounds(s, t)
        sampled = method.feature_pair_bounds(s, t, locations=4)
    assert per_pair.shape == (2,) and float(per_pair.mean()) == float(est["mi_feature"])
    assert [float(v) for v in per_pair] == [float(est["mi_feature_0"]), float(est["mi_feature_1"])]
    assert sampled.shape == (2,) and not torch.equal(sampled, per_pair)


def test_mimkd_exact_path_draws_no_locations():
    """locations = 0 (the paper's computation) uses the global generator exactly as before: only the
    memory's draw; the sampled path draws more."""
    states = []
    for table in ({}, {"locations": 5}):
        torch.manual_seed(0)
        method = _mimkd(table)
        torch.manual_seed(1)
        method(_features(seed=1, dim=12), _features(), torch.randint(0, 10, (4,)), torch.arange(4))
        states.append(torch.get_rng_state())
    torch.manual_seed(0)
    method = _mimkd({})
    torch.manual_seed(1)
    torch.randint(0, 10, (4,))
    method.memory.draw(torch.arange(4))
    assert torch.equal(states[0], torch.get_rng_state())
    assert not torch.equal(states[1], states[0])


def test_bf16_critics_compute_in_bf16_and_keep_bounds_in_fp32():
    torch.manual_seed(0)
    method = _mimkd({"critic_precision": "bf16"})
    seen = []
    for critic in [method.local_critic, *method.feature_critics]:
        critic.second.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    out = method(_features(seed=1, dim=12), _features(), torch.randint(0, 10, (4,)), torch.arange(4))
    assert seen and all(d == torch.bfloat16 for d in seen)
    assert all(v.dtype == torch.float32 for v in out.estimates.values())
    assert all(v.dtype == torch.float32 for v in out.losses.values())
    assert not _mimkd({}).bf16_critics and not _mimkd({"critic_precision": "fp32"}).bf16_critics


def _global_projection_dtypes(opts: dict) -> list[torch.dtype]:
    """The output dtypes of the global critic's projections in one MIMKD step with `opts`."""
    torch.manual_seed(0)
    method = _mimkd(opts)
    seen = []
    for proj in (method.global_critic.proj_t, method.global_critic.proj_s):
        proj.block[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    method(_features(seed=1, dim=12), _features(), torch.randint(0, 10, (4,)), torch.arange(4))
    return seen


def test_global_critic_follows_critic_precision_unless_kept_fp32():
    assert set(_global_projection_dtypes({"critic_precision": "bf16"})) == {torch.bfloat16}
    kept = _mimkd({"critic_precision": "bf16", "global_critic_precision": "fp32"})
    assert kept.bf16_critics and not kept.bf16_global
    assert set(_global_projection_dtypes({"critic_precision": "bf16", "global_critic_precision": "fp32"})) \
        == {torch.float32}
