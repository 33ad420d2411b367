"""One distillation step (forward + backward) of every method on fabricated features shaped like
the paper's teacher → student pairs (its CIFAR models' maps, as tests/models/test_model_zoo.py lists
them), with gradient checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mimkd_edge.methods import MethodContext, create_method, list_methods, method_class
from mimkd_edge.models import create_model, is_model, map_shapes
from mimkd_edge.models.features import FeatureModel, Features
from mimkd_edge.schema import build

MAPS = {  # (C, H, W) shallow → deep, vector size
    "resnet32x4": ([(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)], 256),
    "resnet8x4": ([(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)], 256),
    "wrn_40_2": ([(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)], 128),
    "wrn_16_1": ([(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)], 64),
    "resnet50": ([(64, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4)], 2048),
    "shufflenetv2": ([(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4)], 1024),
    "vgg13": ([(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4)], 512),
    "mobilenetv2": ([(16, 16, 16), (12, 16, 16), (16, 8, 8), (48, 4, 4), (160, 2, 2)], 1280),
    "resnet56": ([(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)], 64),
    "conv4_mp": ([(64, 16, 16), (64, 8, 8), (64, 4, 4), (64, 2, 2)], 64),
}
PAIRS = [("resnet32x4", "resnet8x4"), ("wrn_40_2", "wrn_16_1"), ("resnet50", "shufflenetv2"),
         ("vgg13", "mobilenetv2"), ("resnet56", "conv4_mp")]
N, CLASSES, SAMPLES = 4, 10, 64
SMALL = {  # keep the critics and memories small: the step, not the size, is under test
    "mimkd": {"critic_hidden": 16, "embed_dim": 8, "nce_k": 32},
    "crd": {"feat_dim": 8, "nce_k": 32},
}
DISTILLERS = ["fitnet", "at", "vid", "crd", "mimkd"]


def fake_features(maps, dim, n=4, num_classes=10, requires_grad=True, generator=None):
    """Features with the given map shapes (C, H, W) and vector size, as leaf tensors."""
    def t(*shape):
        return torch.randn(n, *shape, generator=generator).requires_grad_(requires_grad)

    return Features(t(num_classes), [t(*m) for m in maps], t(dim))


def make(name, teacher, student, table=None):
    t_maps, t_dim = MAPS[teacher]
    s_maps, s_dim = MAPS[student]
    ctx = MethodContext(num_classes=CLASSES, num_samples=SAMPLES, input_size=32, student_maps=tuple(s_maps),
                        student_dim=s_dim, teacher_maps=tuple(t_maps), teacher_dim=t_dim)
    opts = build(method_class(name).Options, {**SMALL.get(name, {}), **(table or {})})
    return create_method(name, opts, ctx)


def step(method, teacher, student, index=None):
    """Forward + backward; teacher tensors *require* grad, to prove none reaches them."""
    t = fake_features(*MAPS[teacher], n=N, num_classes=CLASSES, requires_grad=True)
    s = fake_features(*MAPS[student], n=N, num_classes=CLASSES, requires_grad=True)
    labels = torch.randint(0, CLASSES, (N,))
    if index is None:
        index = torch.randperm(SAMPLES)[:N]
    out = method(s, t, labels, index)
    for name, value in out.losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
    for name, value in out.estimates.items():
        assert not value.requires_grad and torch.isfinite(value), name
    out.total.backward()
    assert t.logits.grad is None and t.vector.grad is None and all(m.grad is None for m in t.maps)
    return out, s


def assert_all_params_have_grad(method):
    for name, p in method.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    params = list(method.parameters())
    assert not params or any(p.grad.abs().sum() > 0 for p in params)


def test_every_method_is_registered():
    assert set(list_methods()) >= {"none", "kd", "fitnet", "at", "vid", "crd", "mimkd"}


@pytest.mark.parametrize("teacher,student", PAIRS)
@pytest.mark.parametrize("name", DISTILLERS)
def test_one_step_on_paper_pairs(name, teacher, student):
    method = make(name, teacher, student)
    out, s = step(method, teacher, student)
    assert "ce" in out.losses and "kd" not in out.losses  # eq. 7: α = 1 for every method but KD
    assert_all_params_have_grad(method)
    assert s.logits.grad is not None
    assert not any(isinstance(m, FeatureModel) for m in method.modules())  # never owns a network
    if name in ("crd", "mimkd"):
        assert s.vector.grad is not None and s.vector.grad.abs().sum() > 0
    if name == "mimkd":
        assert set(out.losses) == {"ce", "global", "local", "feature"}
        per_pair = {f"mi_feature_{k}" for k in range(len(method.pairs))} if len(method.pairs) > 1 else set()
        assert set(out.estimates) == {"mi_global", "mi_local", "mi_feature", *per_pair}
        if per_pair:  # eq. 5: the feature term is the mean of the pairs' bounds
            torch.testing.assert_close(torch.stack([out.estimates[k] for k in sorted(per_pair)]).mean(),
                                       out.estimates["mi_feature"])
        assert out.estimates["mi_global"] <= math.log(32 + 1) + 1e-5
        for term, est in (("global", "mi_global"), ("local", "mi_local"), ("feature", "mi_feature")):
            weight = getattr(method.opts, f"lambda_{term}")
            torch.testing.assert_close(out.losses[term].detach(), -weight * out.estimates[est])
        for _, si in method.pairs:  # feature term reaches every paired student map
            assert s.maps[si].grad is not None and s.maps[si].grad.abs().sum() > 0
    if name in ("at", "vid"):
        assert all(s.maps[si].grad is not None for _, si in method.pairs)
    if name == "fitnet":
        assert s.maps[method.hint[1]].grad is not None


def test_mimkd_paper_defaults_one_step():
    method = make("mimkd", "resnet56", "conv4_mp", {"critic_hidden": 512, "embed_dim": 128, "nce_k": 4096})
    o = method.opts
    assert (o.alpha, o.temperature, o.lambda_global, o.lambda_local, o.lambda_feature) == (1.0, 4.0, 1.0, 0.75, 1.0)
    assert (o.global_bound, o.global_critic, o.local_critic, o.feature_critic) == ("infonce", "project", "convolve",
                                                                                     "convolve")
    assert (o.negatives, o.nce_k, o.nce_t, o.embed_dim, o.memory) == ("derangement", 4096, 0.07, 128, "bank")
    assert o.standardize_teacher
    assert method.needs_index and method.pairs == ((2, 0), (3, 1))
    out, _ = step(method, "resnet56", "conv4_mp")
    assert out.estimates["mi_global"] <= math.log(4097) + 1e-5
    assert_all_params_have_grad(method)


VARIANTS = [
    {"global_bound": "jsd"},
    {"global_bound": "jsd", "global_critic": "convolve", "negatives": "all"},
    {"local_critic": "project", "feature_critic": "project", "negatives": "all"},
    {"memory": "queue"},
    {"standardize_teacher": False},
    {"global_critic": "convolve"},
    {"global_critic": "convolve", "memory": "queue"},
    {"alpha": 0.9},
    {"lambda_local": 0, "lambda_feature": 0},
]


@pytest.mark.parametrize("table", VARIANTS, ids=lambda t: ",".join(f"{k}={v}" for k, v in t.items()))
def test_mimkd_variants(table):
    method = make("mimkd", "wrn_40_2", "wrn_16_1", table)
    out, s = step(method, "wrn_40_2", "wrn_16_1")
    assert_all_params_have_grad(method)
    assert s.vector.grad is not None
    assert ("kd" in out.losses) == (table.get("alpha", 1.0) < 1)
    jsd_estimates = [v for k, v in out.estimates.items() if k != "mi_global" or table.get("global_bound") == "jsd"]
    assert all(v <= 0 for v in jsd_estimates)  # the JSD bound is never positive


def test_mimkd_needs_index_and_memory_updates():
    method = make("mimkd", "wrn_40_2", "wrn_16_1")
    assert method.needs_index
    assert not make("mimkd", "wrn_40_2", "wrn_16_1", {"global_bound": "jsd"}).needs_index
    assert not make("mimkd", "wrn_40_2", "wrn_16_1", {"memory": "queue"}).needs_index
    assert {"memory.rows", "memory.filled", "vector_std.mean"} <= set(method.state_dict())
    t = fake_features(*MAPS["wrn_40_2"], n=N, num_classes=CLASSES)
    s = fake_features(*MAPS["wrn_16_1"], n=N, num_classes=CLASSES)
    labels = torch.zeros(N, dtype=torch.long)
    with pytest.raises(ValueError, match="needs sample indices"):
        method(s, t, labels, None)
    index = torch.tensor([5, 6, 7, 8])
    before = {k: v.clone() for k, v in method.state_dict().items() if "memory" in k or "_std" in k}
    method.eval()
    method(s, t, labels, index)
    for k, v in before.items():  # evaluation leaves the memory and the statistics alone
        torch.testing.assert_close(method.state_dict()[k], v)
    method.train()
    method(s, t, labels, index)
    assert method.memory.filled.nonzero().flatten().tolist() == [5, 6, 7, 8]
    torch.testing.assert_close(method.memory.rows[index], t.vector.detach())  # raw vectors, as they came
    assert int(method.vector_std.count) == 1 and all(int(m.count) == 1 for m in method.map_std)
    # the next batch draws its negatives among the stored rows, never its own samples
    assert sorted(method.memory.draw(torch.tensor([5, 9, 10, 11])).tolist()) == [6, 7, 8]


@pytest.mark.parametrize("table", [{}, {"loss": "softmax"}, {"shared": True}])
def test_crd_variants(table):
    method = make("crd", "resnet32x4", "resnet8x4", table)
    assert method.needs_index
    step(method, "resnet32x4", "resnet8x4")
    assert_all_params_have_grad(method)
    if table.get("loss", "nce") == "nce":
        z = method.log_z.clone()
        assert torch.isfinite(z).all()
        step(method, "resnet32x4", "resnet8x4")
        torch.testing.assert_close(method.log_z, z)  # Z is estimated once


def test_baseline_defaults_follow_appendix_a2_as_repdistiller_runs_them():
    def opts(name):
        return build(method_class(name).Options, {})

    assert (opts("fitnet").alpha, opts("fitnet").beta) == (1.0, 100.0)
    assert (opts("at").alpha, opts("at").beta, opts("at").p) == (1.0, 1000.0, 2.0)
    assert (opts("vid").alpha, opts("vid").beta) == (1.0, 1.0)
    c = opts("crd")
    assert (c.alpha, c.beta, c.feat_dim, c.nce_k, c.nce_t, c.nce_momentum) == (1.0, 0.8, 128, 4096, 0.07, 0.5)
    assert opts("kd").alpha == 0.1  # RepDistiller's -r 0.1 -a 0.9: 0.1·CE + 0.9·KL
    assert opts("fitnet").kernel == 1 and opts("fitnet").relu  # its ConvReg: 1×1 conv, BN, ReLU
    assert opts("at").skip_first_map and opts("vid").skip_first_map  # its feat[1:-1]


def test_kd_default_weighs_ce_by_0_1_and_kl_by_0_9():
    method = make("kd", "resnet32x4", "resnet8x4")
    s = fake_features(*MAPS["resnet8x4"], n=N, num_classes=CLASSES)
    t = fake_features(*MAPS["resnet32x4"], n=N, num_classes=CLASSES, requires_grad=False)
    labels = torch.randint(0, CLASSES, (N,))
    out = method(s, t, labels)
    ce = F.cross_entropy(s.logits, labels)
    p_t = F.softmax(t.logits / 4, dim=1)  # an independent KL: Σ p_t (log p_t − log p_s), T² = 16
    kl = (p_t * (p_t.log() - F.log_softmax(s.logits / 4, dim=1))).sum(1).mean() * 16
    torch.testing.assert_close(out.losses["ce"], 0.1 * ce)
    torch.testing.assert_close(out.losses["kd"], 0.9 * kl)


def test_at_and_vid_leave_out_the_stem_pair():
    # ResNet-32x4 → ResNet-8x4: R is all four maps; RepDistiller distils feat[1:-1], the last three
    for name in ("at", "vid"):
        assert make(name, "resnet32x4", "resnet8x4").pairs == ((1, 1), (2, 2), (3, 3))
        assert make(name, "resnet32x4", "resnet8x4",
                    {"skip_first_map": False}).pairs == ((0, 0), (1, 1), (2, 2), (3, 3))
    # 64@8 ↔ 64@8; 32@16 ↔ 64@16 used the first student map
    assert make("at", "resnet56", "conv4_mp").pairs == ((3, 1),)


def test_fitnet_regressor_is_conv_bn_relu():
    reg = make("fitnet", "resnet32x4", "resnet8x4").regressor
    assert [type(m).__name__ for m in reg] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert reg[0].kernel_size == (1, 1) and reg[0].bias is not None


def test_fitnet_hints_the_middle_pair():
    assert make("fitnet", "resnet32x4", "resnet8x4").hint == (2, 2)  # 128@16, the second stage
    assert make("fitnet", "resnet50", "shufflenetv2").hint == (3, 2)  # 1024@8 ↔ 232@8


@pytest.mark.parametrize("teacher,student,n_pairs", [("resnet32x4", "shufflenetv2", 3), ("resnet56", "conv4_mp", 2)])
def test_mimkd_step_with_real_models(teacher, student, n_pairs):
    """The zoo's own shapes (map_shapes) give the pairs of the walking rule (pairing.py); one real step, teacher
    frozen."""
    if not (is_model(teacher) and is_model(student)):
        pytest.skip("model not in the zoo yet")
    torch.manual_seed(0)
    t_net, s_net = create_model(teacher, num_classes=CLASSES).eval(), create_model(student, num_classes=CLASSES)
    ctx = MethodContext(num_classes=CLASSES, num_samples=SAMPLES, input_size=32,
                        student_maps=tuple(map_shapes(s_net)), student_dim=s_net.num_features,
                        teacher_maps=tuple(map_shapes(t_net)), teacher_dim=t_net.num_features)
    method = create_method("mimkd", build(method_class("mimkd").Options, SMALL["mimkd"]), ctx)
    assert len(method.pairs) == n_pairs
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, CLASSES, (2,))
    with torch.no_grad():
        t_feats = t_net.forward_features(x)
    out = method(s_net.forward_features(x), t_feats, y, torch.tensor([0, 1]))
    out.total.backward()
    assert all(p.grad is not None for p in s_net.parameters() if p.requires_grad)
    assert all(p.grad is None for p in t_net.parameters())
    assert_all_params_have_grad(method)


@pytest.mark.parametrize("name", ["kd", *DISTILLERS])
def test_large_teacher_activations_give_finite_losses_and_gradients(name):
    """A short-trained teacher's features reach 1e4–1e5 (a ResNet-56 after one epoch: maps up to
    6.5e4); every method must take a step from such a teacher with finite losses and gradients,
    and MIMKD must keep doing so at the paper's lr (it once reached inf on step 6)."""
    torch.manual_seed(0)
    method = make(name, "resnet56", "conv4_mp")
    student = nn.Conv2d(3, 64, 3, padding=1)  # a tiny trainable "student" behind the fabricated features
    opt = torch.optim.SGD([*method.parameters(), *student.parameters()], lr=0.05, momentum=0.9)
    for _ in range(8 if name == "mimkd" else 1):
        x = torch.randn(N, 3, 16, 16)
        base = student(x)
        s_maps = [F.adaptive_avg_pool2d(base, h) for h in (16, 8, 4, 2)]
        s = Features(base.mean((2, 3))[:, :CLASSES], s_maps, base.mean((2, 3)))
        t = fake_features(*MAPS["resnet56"], n=N, num_classes=CLASSES, requires_grad=False)
        t = Features(t.logits * 5e4, [m.abs() * 6e4 for m in t.maps], t.vector.abs() * 3e4)
        out = method(s, t, torch.randint(0, CLASSES, (N,)), torch.randperm(SAMPLES)[:N])
        assert all(torch.isfinite(v) for v in out.losses.values()), out.losses
        opt.zero_grad()
        out.total.backward()
        grads = [p.grad for p in [*method.parameters(), *student.parameters()] if p.grad is not None]
        assert all(torch.isfinite(g).all() for g in grads)
        opt.step()
