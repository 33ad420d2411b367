"""Is MIMKD's exact path (locations = 0, fp32 critics) the computation it was before issue 17's cost levers?

Runs three MIMKD steps (each a forward and backward; the memory carries over between them) for three
settings (the paper's defaults, all-pairs negatives, the JSD global bound) on fixed random features,
prints each loss and one sha256 over the bytes of every loss and gradient. Run it against two
checkouts and compare the hashes: equal hashes mean bit-identical losses and gradients.

    OMP_NUM_THREADS=1 python -m bench.exact_path_check            # this checkout's library
    git worktree add /tmp/prelever 4e94050^                       # the commit before the levers
    PYTHONPATH=/tmp/prelever OMP_NUM_THREADS=1 python bench/exact_path_check.py

Against another checkout's library the file is run itself, not as a module: `python -m` puts the working
directory (this checkout) before PYTHONPATH. It imports nothing else of bench/, so both ways work; the
first line printed names the library used.

tests/methods/test_mimkd_exact_golden.py keeps the losses this printed before the levers.

It calls the method itself, not engine.step.TrainStep: there are no models and no optimiser (the
features are fixed random tensors, and the gradients accumulate over the three steps, as the commit
before the levers computed them), so that the hash compares across checkouts.
"""

from __future__ import annotations

import hashlib

import torch

import mimkd_edge
from mimkd_edge.methods import MethodContext, create_method, method_class
from mimkd_edge.models.features import Features
from mimkd_edge.schema import build

SETTINGS = ({}, {"negatives": "all"}, {"global_bound": "jsd"})
MAPS = ((8, 8, 8), (16, 4, 4))


def features(n: int, seed: int, dim: int) -> Features:
    g = torch.Generator().manual_seed(seed)
    return Features(torch.randn(n, 10, generator=g),
                    [torch.randn(n, *MAPS[0], generator=g), torch.randn(n, *MAPS[1], generator=g)],
                    torch.randn(n, dim, generator=g))


def exact_steps(extra: dict, steps: int = 3):
    """Yield (loss, gradients) of `steps` MIMKD steps with the paper's exact path and `extra` options."""
    ctx = MethodContext(num_classes=10, num_samples=64, input_size=32, student_maps=MAPS, student_dim=12,
                        teacher_maps=MAPS, teacher_dim=16)
    torch.manual_seed(0)
    method = create_method("mimkd", build(method_class("mimkd").Options,
                                          {"critic_hidden": 16, "embed_dim": 8, "nce_k": 32, **extra}), ctx)
    for step in range(steps):
        s = features(6, 10 + step, 12)
        for t in (*s.maps, s.vector):
            t.requires_grad_(True)
        torch.manual_seed(100 + step)
        loss = method(s, features(6, 20 + step, 16), torch.randint(0, 10, (6,)), torch.arange(6) + step).total
        loss.backward()
        yield loss.detach(), [*(m.grad for m in s.maps), s.vector.grad,
                              *(p.grad for p in method.parameters() if p.grad is not None)]


def main() -> None:
    print(mimkd_edge.__file__)
    digest = hashlib.sha256()
    for extra in SETTINGS:
        for step, (loss, grads) in enumerate(exact_steps(extra)):
            for t in (loss, *grads):
                digest.update(t.contiguous().numpy().tobytes())
            print(extra, step, repr(loss.item()))
    print("sha256", digest.hexdigest())


if __name__ == "__main__":
    main()
