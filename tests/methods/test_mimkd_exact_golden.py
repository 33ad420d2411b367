"""MIMKD's exact path (locations = 0, fp32 critics) computes what it did before issue 17's cost levers:
the losses below were printed by bench/exact_path_check.py on the commit before them (4e94050^). On
the machine that recorded them the whole check was bit-identical (one sha256 over every loss and
gradient, before and after); across CPUs kernels may round differently, hence the 1e-5 tolerance."""

import pytest

from bench import exact_path_check as check
BEFORE_LEVERS = {  # setting → loss of steps 0, 1, 2
    "defaults": (9.731233596801758, 9.512567520141602, 11.3434419631958),
    "negatives = all": (9.732348442077637, 9.51314926147461, 11.343170166015625),
    "global_bound = jsd": (6.6632771492004395, 7.0658745765686035, 7.4377241134643555),
}


@pytest.mark.parametrize("index, name", list(enumerate(BEFORE_LEVERS)))
def test_exact_path_losses_are_those_before_the_levers(index, name):
    losses = [loss.item() for loss, _ in check.exact_steps(check.SETTINGS[index])]
    assert losses == pytest.approx(BEFORE_LEVERS[name], rel=1e-5)
