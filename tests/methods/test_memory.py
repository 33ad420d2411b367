"""Memory bank and FIFO queue: sampling rules, momentum update, state_dict, and autograd safety."""

import pytest
import torch
import torch.nn.functional as F

from mimkd_edge.methods.memory import MemoryBank, TeacherMemory


def test_bank_per_anchor_draw_never_picks_the_anchor():
    bank = MemoryBank(10, 4)
    index = torch.tensor([0, 3, 9])
    idx = bank.draw(index, 500)
    assert idx.shape == (3, 500)
    assert (idx != index[:, None]).all() and idx.min() >= 0 and idx.max() <= 9
    assert len(idx[1].unique()) == 9  # uniform over the 9 other samples: all of them appear


def test_bank_shared_draw_avoids_the_whole_batch():
    bank = MemoryBank(10, 4)
    index = torch.tensor([2, 3, 7, 3])
    idx = bank.draw(index, 1000, shared=True)
    assert idx.shape == (1000,)
    assert set(idx.tolist()) == {0, 1, 4, 5, 6, 8, 9}


def test_bank_update_momentum_and_normalisation():
    bank = MemoryBank(5, 3, views=2, momentum=0.5)
    before = bank.bank.clone()
    emb = F.normalize(torch.randn(2, 2, 3), dim=-1)
    index = torch.tensor([4, 1])
    bank.update(emb, index)
    expected = F.normalize(0.5 * before[:, index] + 0.5 * emb, dim=-1)
    torch.testing.assert_close(bank.bank[:, index], expected)
    torch.testing.assert_close(bank.bank[:, [0, 2, 3]], before[:, [0, 2, 3]])  # other rows untouched
    torch.testing.assert_close(bank.bank.norm(dim=-1), torch.ones(2, 5))
    bank.update([emb[0], emb[1]], index)  # a sequence of views works too


def test_bank_lives_in_state_dict():
    bank = MemoryBank(6, 3)
    bank.update(torch.randn(2, 2, 3), torch.tensor([0, 1]))
    other = MemoryBank(6, 3)
    other.load_state_dict(bank.state_dict())
    torch.testing.assert_close(other.bank, bank.bank)


@pytest.mark.parametrize("shared", [False, True])
def test_bank_dot_paths_agree_and_survive_an_update_before_backward(shared):
    bank = MemoryBank(50, 8)
    index = torch.arange(4)
    idx = bank.draw(index, 5, shared=shared)
    q = torch.randn(4, 8, requires_grad=True)
    for ratio in (1e9, 0.0):  # dense (score every row, pick K) and gather paths
        rows = bank.bank[0][idx]  # (K, D) shared or (N, K, D)
        want = q.detach() @ rows.t() if shared else (rows * q.detach()[:, None]).sum(-1)
        bank.dense_ratio = ratio
        q.grad = None
        scores = bank.dot(q, 0, idx)
        torch.testing.assert_close(scores, want)
        bank.update(torch.randn(2, 4, 8), index)  # the trainer's memory write, before backward
        scores.sum().backward()  # must not complain about an in-place change
        torch.testing.assert_close(q.grad, rows.sum(0).expand(4, 8) if shared else rows.sum(1))


def test_teacher_memory_stores_raw_vectors_and_draws_only_filled_rows():
    memory = TeacherMemory("bank", num_samples=10, size=4, dim=3)
    assert memory.draw(torch.tensor([0, 1])).numel() == 0  # nothing stored: no random start row is a negative
    vectors = torch.randn(3, 3) * 1e3
    memory.update(vectors, torch.tensor([2, 3, 4]))
    torch.testing.assert_close(memory.rows[2:5], vectors)  # as they came: not normalised, not blended
    assert sorted(memory.draw(torch.tensor([3, 9])).tolist()) == [2, 4]  # filled, and not in the batch
    memory.update(torch.randn(3, 3), torch.tensor([2, 3, 4]))  # a newer view of the same samples replaces the old
    memory.update(torch.randn(5, 3), torch.tensor([5, 6, 7, 8, 9]))
    for _ in range(20):
        drawn = memory.draw(torch.tensor([0, 5]))
        assert len(drawn) == 4 and len(set(drawn.tolist())) == 4  # `size` rows, without replacement
        assert set(drawn.tolist()) <= {2, 3, 4, 6, 7, 8, 9}


def test_teacher_memory_draw_is_uniform():
    memory = TeacherMemory("bank", num_samples=6, size=2, dim=1)
    memory.update(torch.zeros(6, 1), torch.arange(6))
    torch.manual_seed(0)
    counts = torch.zeros(6)
    for _ in range(3000):
        counts[memory.draw(torch.tensor([0]))] += 1
    assert counts[0] == 0
    assert (counts[1:] / 3000 - 2 / 5).abs().max() < 0.04  # each of the 5 allowed rows in 2 of 5 draws


def test_teacher_queue_is_fifo_and_lives_in_state_dict():
    queue = TeacherMemory("queue", num_samples=100, size=5, dim=2)
    for step in range(3):  # 3 batches of 2 rows into 5 slots: the oldest row is overwritten
        queue.update(torch.full((2, 2), float(step)))
    assert queue.rows[:, 0].tolist() == [2.0, 0.0, 1.0, 1.0, 2.0] and int(queue.ptr) == 1
    assert sorted(queue.draw(None).tolist()) == [0, 1, 2, 3, 4] and not queue.needs_index
    other = TeacherMemory("queue", num_samples=100, size=5, dim=2)
    other.load_state_dict(queue.state_dict())
    torch.testing.assert_close(other.rows, queue.rows)
    with pytest.raises(ValueError, match="unknown memory"):
        TeacherMemory("ring", 100, 5, 2)


def test_bank_scores_stay_float32_under_autocast():
    """bf16 scores cost CRD's NCE term ~10 % of its value (found by the CUDA check's bf16 test)."""
    bank = MemoryBank(100, 8)
    q = torch.randn(4, 8)
    for shared in (False, True):
        idx = bank.draw(torch.arange(4), 10, shared=shared)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scores = bank.dot(q, 0, idx)
        assert scores.dtype == torch.float32
        torch.testing.assert_close(scores, bank.dot(q, 0, idx))


def test_seed_draws_gives_each_memory_its_own_stream():
    from torch import nn

    from mimkd_edge.methods.memory import seed_draws

    bank, queue = MemoryBank(50, 4), TeacherMemory("queue", 0, 5, 4)
    queue.update(torch.randn(20, 4))

    def draws(seed):
        seed_draws(nn.ModuleList([bank, queue]), seed)
        return bank.draw(torch.tensor([0, 1]), 6).tolist(), queue.draw(None).tolist()

    global_state = torch.get_rng_state()
    assert draws(1) == draws(1) and draws(1) != draws(2)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is not what they drew from
