"""torchrun with 2 CPU processes (gloo): same optimiser steps, one run directory, similar accuracy."""

import json
import os
import subprocess
import sys

from helpers import tiny_table

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
