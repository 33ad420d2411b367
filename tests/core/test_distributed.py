"""torchrun with 2 CPU processes (gloo): same optimiser steps, one run directory, similar accuracy; two "nodes"
on localhost (c10d rendezvous) train the very same run as one node with two processes; each rank draws its own
negatives from the shared memory, and CRD's normalising constant is one for all ranks."""

import json
import math
import os
import socket
import subprocess
import sys

import pytest
import torch
from helpers import tiny_recipe, tiny_table

from mimkd_edge.recipe import dumps_toml

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _env():
    # module-scoped fixtures run before conftest's per-test settings: say here that runs write no event files
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "MIMKD_TENSORBOARD": "0"}


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, check=False, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(command, cwd, env):
    """`command` on two torchrun "nodes" on this machine, one process each, meeting at a c10d rendezvous."""
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--node-rank", str(rank), "--nproc-per-node", "1",
                               "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "test", *command],
                              cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    for node in nodes:
        output, _ = node.communicate(timeout=300)
        assert node.returncode == 0, output[-3000:]


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    """One recipe trained by one process ("one"), by torchrun with 2 processes ("two") and by two torchrun
    nodes of one process each ("nodes")."""
    tmp = tmp_path_factory.mktemp("ddp")
    table = tiny_table(name="ddp", model="conv4", epochs=2)
    table["train"]["batch_size"] = 32
    table["data"]["synthetic_train"] = 512
    (tmp / "r.toml").write_text(dumps_toml(table))
    train = ["-m", "mimkd_edge", "train", "r.toml", "--out"]
    _run([sys.executable, *train, "one"], tmp, _env())
    _run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", *train, "two"], tmp, _env())
    _two_nodes([*train, "nodes"], tmp, _env())
    return tmp


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_torchrun_two_processes_matches_one(ddp_runs):
    one, two = _metrics(ddp_runs / "one"), _metrics(ddp_runs / "two")
    assert [m["steps"] for m in one] == [m["steps"] for m in two] == [16, 16]
    assert len(two) == 2  # one line per epoch: only rank 0 wrote
    files = sorted(p.name for p in (ddp_runs / "two").iterdir())
    assert files == [".lock", "checkpoint.pt", "metrics.jsonl", "model.safetensors", "recipe.toml", "summary.json"]
    s1 = json.loads((ddp_runs / "one" / "summary.json").read_text())
    s2 = json.loads((ddp_runs / "two" / "summary.json").read_text())
    assert s2["data"]["train_size"] == s1["data"]["train_size"]
    assert s1["final_test_acc"] > 60 and abs(s1["final_test_acc"] - s2["final_test_acc"]) <= 5.0


def test_two_nodes_train_what_one_node_with_two_processes_does(ddp_runs):
    timing = ("seconds", "images_per_s")
    nodes, two = ([{k: v for k, v in m.items() if k not in timing} for m in _metrics(ddp_runs / run)]
                  for run in ("nodes", "two"))
    assert nodes == two and len(nodes) == 2  # every loss and accuracy, written once (by global rank 0)
    assert (ddp_runs / "nodes" / "model.safetensors").read_bytes() == \
        (ddp_runs / "two" / "model.safetensors").read_bytes()


# Runs under torchrun, one copy per rank: records the negative indices each memory draws and CRD's
# normalising constant after its first step, into draws-<rank>.json.
_RECORD_DRAWS = '''
import json, os, sys
from mimkd_edge.engine.trainer import fit
from mimkd_edge.methods.crd import CRD
from mimkd_edge.methods.memory import MemoryBank, TeacherMemory
from mimkd_edge.recipe import load_recipe

seen = {"MemoryBank": [], "TeacherMemory": [], "log_z": []}
for cls in (MemoryBank, TeacherMemory):
    def draw(self, *args, _draw=cls.draw, _name=cls.__name__, **kwargs):
        drawn = _draw(self, *args, **kwargs)
        seen[_name].append(drawn.tolist())
        return drawn
    cls.draw = draw
crd_forward = CRD.forward
def forward(self, *args, **kwargs):
    out = crd_forward(self, *args, **kwargs)
    seen["log_z"].append(self.log_z.tolist())
    return out
CRD.forward = forward
for name in ("crd", "mimkd"):
    fit(load_recipe(f"{name}.toml"), name.upper())
with open(f"draws-{os.environ['RANK']}.json", "w") as f:
    json.dump(seen, f)
'''


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A CRD and a MIMKD distillation under torchrun with 2 CPU processes (runs CRD/ and MIMKD/), and what
    each rank drew (draws-<rank>.json)."""
    from mimkd_edge.engine.trainer import fit

    tmp = tmp_path_factory.mktemp("distilled")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MIMKD_TENSORBOARD", "0")
        fit(tiny_recipe(name="t", model="conv4"), tmp / "T")
    teacher = {"model": "conv4", "checkpoint": str(tmp / "T" / "model.safetensors")}
    for method, options in (("crd", {"nce_k": 8, "feat_dim": 8}), ("mimkd", {"nce_k": 16, "critic_hidden": 16})):
        table = tiny_table(name=method, model="conv4_mp", method=method, teacher=teacher)
        table["method"].update(options)
        (tmp / f"{method}.toml").write_text(dumps_toml(table))
    (tmp / "record.py").write_text(_RECORD_DRAWS)
    _run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", "record.py"], tmp, _env())
    return tmp


@pytest.fixture(scope="module")
def per_rank_draws(distilled):
    return [json.loads((distilled / f"draws-{rank}.json").read_text()) for rank in (0, 1)]


def test_torchrun_keeps_the_memory_bank_whole(distilled):
    """Under DDP each rank sees half the batch; rank 0's memory must still get every sample's row."""
    from mimkd_edge.rundir.checkpoint import load_checkpoint

    state = load_checkpoint(distilled / "MIMKD" / "checkpoint.pt").method
    filled = state["memory.filled"]
    assert filled.all(), f"{(~filled).sum().item()} samples' teacher vectors never reached rank 0's memory"
    rows = state["memory.rows"]
    assert torch.isfinite(rows).all() and (rows.abs().sum(-1) > 0).all()
    assert int(state["vector_std.count"]) > 0  # the statistics of every rank's batches, averaged


def test_ranks_draw_different_crd_negatives(per_rank_draws):
    zero, one = (torch.tensor(ranks["MemoryBank"][0]) for ranks in per_rank_draws)  # (anchors, K) each
    # Drawn from one stream the two ranks' indices agree but where an anchor's own row shifts them by one
    # (most of them); drawn independently, about 1 in 95.
    assert (zero == one).float().mean() < 0.2


def test_ranks_draw_different_mimkd_negatives(per_rank_draws):
    zero, one = ([d for d in ranks["TeacherMemory"] if d][0] for ranks in per_rank_draws)  # once the memory holds rows
    assert sorted(zero) != sorted(one)


def test_crd_normalising_constant_is_the_same_on_every_rank(per_rank_draws):
    zero, one = (ranks["log_z"][0] for ranks in per_rank_draws)
    assert zero == one and all(math.isfinite(v) for v in zero)  # estimated from both ranks' first batches
