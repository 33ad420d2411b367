"""torchrun with 2 CPU processes (gloo): same optimiser steps, one run directory, similar accuracy; each rank
draws its own negatives from the shared memory, and CRD's normalising constant is one for all ranks."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from helpers import tiny_recipe, tiny_table

from mimkd_edge.recipe import dumps_toml


def _run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, check=False, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_torchrun_two_processes_matches_one(tmp_path):
    table = tiny_table(name="ddp", model="conv4", epochs=2)
    table["train"]["batch_size"] = 32
    table["data"]["synthetic_train"] = 512
    recipe = tmp_path / "r.toml"
    recipe.write_text(dumps_toml(table))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    _run([sys.executable, "-m", "mimkd_edge", "train", str(recipe), "--out", str(tmp_path / "one")], tmp_path, env)
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "mimkd_edge", "train", str(recipe), "--out", str(tmp_path / "two")], tmp_path, env)

    def metrics(name):
        return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    one, two = metrics("one"), metrics("two")
    assert [m["steps"] for m in one] == [m["steps"] for m in two] == [16, 16]
    assert len(two) == 2  # one line per epoch: only rank 0 wrote
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files == [".lock", "checkpoint.pt", "metrics.jsonl", "model.safetensors", "recipe.toml", "summary.json"]
    s1 = json.loads((tmp_path / "one" / "summary.json").read_text())
    s2 = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert s2["data"]["train_size"] == s1["data"]["train_size"]
    assert s1["final_test_acc"] > 60 and abs(s1["final_test_acc"] - s2["final_test_acc"]) <= 5.0


def test_torchrun_keeps_the_memory_bank_whole(tmp_path):
    """Under DDP each rank sees half the batch; rank 0's memory must still get every sample's row."""
    import torch

    from mimkd_edge.rundir.checkpoint import load_checkpoint

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    teacher = tmp_path / "t.toml"
    teacher.write_text(dumps_toml(tiny_table(name="t", model="conv4")))
    _run([sys.executable, "-m", "mimkd_edge", "train", str(teacher), "--out", str(tmp_path / "T")], tmp_path, env)
    table = tiny_table(name="s", model="conv4_mp", method="mimkd",
                       teacher={"model": "conv4", "checkpoint": str(tmp_path / "T" / "model.safetensors")})
    table["method"].update({"nce_k": 16, "critic_hidden": 16})
    student = tmp_path / "s.toml"
    student.write_text(dumps_toml(table))
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
          "-m", "mimkd_edge", "distill", str(student), "--out", str(tmp_path / "S")], tmp_path, env)

    state = load_checkpoint(tmp_path / "S" / "checkpoint.pt")["method"]
    filled = state["memory.filled"]
    assert filled.all(), f"{(~filled).sum().item()} samples' teacher vectors never reached rank 0's memory"
    rows = state["memory.rows"]
    assert torch.isfinite(rows).all() and (rows.abs().sum(-1) > 0).all()
    assert int(state["vector_std.count"]) > 0  # the statistics of every rank's batches, averaged


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
    fit(load_recipe(f"{name}.toml"), f"{name}-run")
with open(f"draws-{os.environ['RANK']}.json", "w") as f:
    json.dump(seen, f)
'''


@pytest.fixture(scope="module")
def per_rank_draws(tmp_path_factory):
    """A CRD and a MIMKD distillation under torchrun with 2 CPU processes: what each rank drew."""
    from mimkd_edge.engine.trainer import fit

    tmp = tmp_path_factory.mktemp("draws")
    fit(tiny_recipe(name="t", model="conv4"), tmp / "T")
    teacher = {"model": "conv4", "checkpoint": str(tmp / "T" / "model.safetensors")}
    for method, options in (("crd", {"nce_k": 8, "feat_dim": 8}), ("mimkd", {"nce_k": 8, "critic_hidden": 8})):
        table = tiny_table(name=method, model="conv4_mp", method=method, teacher=teacher)
        table["method"].update(options)
        (tmp / f"{method}.toml").write_text(dumps_toml(table))
    (tmp / "record.py").write_text(_RECORD_DRAWS)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "record.py"],
         tmp, env)
    return [json.loads((tmp / f"draws-{rank}.json").read_text()) for rank in (0, 1)]


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
