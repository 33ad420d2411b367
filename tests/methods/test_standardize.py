"""The running standardiser MIMKD's critics see the teacher through (standardize.py)."""

import torch

from mimkd_edge.methods.standardize import RunningStandardizer


def test_statistics_are_those_of_every_batch_pooled_even_far_from_zero():
    torch.manual_seed(0)
    batches = [torch.randn(8, 3, 4, 4) * 100 + 3e4 for _ in range(5)]  # |mean| ≫ std: cancellation-prone
    std = RunningStandardizer(3)
    for x in batches:
        std.observe(x)
    pooled = torch.cat(batches).double()
    torch.testing.assert_close(std.mean, pooled.mean((0, 2, 3)), rtol=1e-7, atol=1e-3)
    torch.testing.assert_close(std.sq_mean - std.mean**2, pooled.var((0, 2, 3), correction=0), rtol=1e-4, atol=0)
    assert int(std.count) == 5


def test_output_is_unit_scale_and_does_not_depend_on_the_teachers_scale():
    torch.manual_seed(0)
    x = torch.randn(64, 4) * torch.tensor([1.0, 10.0, 100.0, 1e4]) + 5.0
    outputs = []
    for scale in (1.0, 1e4):  # the same teacher with 10⁴× larger activations: the critic sees the same
        std = RunningStandardizer(4)
        std.observe(x * scale)
        outputs.append(std(x * scale))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(outputs[0].mean(0), torch.zeros(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(outputs[0].std(0, correction=0), torch.ones(4), atol=1e-3, rtol=0)


def test_a_fresh_standardizer_uses_the_batch_and_eval_leaves_it_alone():
    std = RunningStandardizer(2)
    x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    torch.testing.assert_close(std(x), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]), atol=1e-3, rtol=0)
    assert int(std.count) == 0
