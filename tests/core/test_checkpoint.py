"""Atomic writes: a failure mid-write leaves the previous file whole."""

import pytest
import torch

from mimkd_edge.atomic import atomic_write
from mimkd_edge.rundir.checkpoint import load_checkpoint, save_checkpoint
from mimkd_edge.errors import UserError


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})

    def crash(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half a checkpo")
        raise OSError("disk full")

    with pytest.raises(UserError, match="checkpoint.pt: cannot write"):
        atomic_write(path, crash)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temp file left behind


def test_truncated_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="unreadable checkpoint"):
        load_checkpoint(path)


class Payload:
    """Stands for any class a tampered checkpoint could smuggle in."""


def test_checkpoint_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": Payload()}, path)
    with pytest.raises(UserError):
        load_checkpoint(path)
