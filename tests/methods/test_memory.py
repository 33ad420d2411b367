"""Memory bank and FIFO queue: sampling rules, momentum update, state_dict, and autograd safety."""

import pytest
import torch
import torch.nn.functional as F

from mimkd_edge.methods.memory import FifoQueue, MemoryBank, make_memory


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
    queue = FifoQueue(4, 3)
    queue.update(torch.randn(2, 3, 3))
    assert set(queue.state_dict()) == {"queue", "ptr"} and int(queue.state_dict()["ptr"]) == 3


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


def test_queue_is_fifo_and_scores_everything():
    queue = FifoQueue(5, 2, views=1, normalize=False)
    for step in range(3):  # 3 batches of 2 rows into 5 slots: the oldest row is overwritten
        queue.update(torch.full((2, 2), float(step)))
    assert queue.queue[0, :, 0].tolist() == [2.0, 0.0, 1.0, 1.0, 2.0]
    assert int(queue.ptr) == 1
    q = torch.ones(3, 2, requires_grad=True)
    scores = queue.dot(q, 0)
    assert scores.shape == (3, 5)
    queue.update(torch.zeros(1, 2))
    scores.sum().backward()
    assert queue.draw(None, 5) is None and not queue.needs_index


def test_make_memory():
    assert isinstance(make_memory("bank", 100, 4, k=10), MemoryBank)
    assert make_memory("queue", 100, 4, k=10).size == 10
    with pytest.raises(ValueError, match="unknown memory"):
        make_memory("ring", 100, 4, k=10)
