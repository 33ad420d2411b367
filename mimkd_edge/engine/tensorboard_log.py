"""TensorBoard event files of a run (`RUN/tb/`): one more consumer of the trainer's events.

Per epoch (the step is the epoch number, 1-based): every loss term (`loss/total`, `loss/<term>`, each
already weighted as it enters the total), each MI estimate (`mi/<name>`: `mi/global`, `mi/local`,
`mi/feature`, ...), the learning rate (`lr`), accuracy (`accuracy/train`, `accuracy/val` where a
validation split is held out, `accuracy/test` on evaluated epochs), the evaluation losses
(`eval_loss/val`, `eval_loss/test`) and time (`time/step_ms`, the epoch's mean step; `time/epoch_s`;
`time/images_per_s`). The same numbers as the run's metrics file, for `tensorboard --logdir runs`.

On by default where `tensorboard` is installed (the `tensorboard` extra); off without a word where it
is not, or with MIMKD_TENSORBOARD=0. Training never needs it. Event files are append-only logs, not
results: they are flushed after every epoch rather than written atomically, and a resumed run starts
a new file whose purge step makes TensorBoard drop the interrupted file's epochs from the resume point on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..rundir import RunDir
from ..rundir.summary import EpochRecord

ENVIRONMENT = "MIMKD_TENSORBOARD"  # "0": no event files even where tensorboard is installed


def epoch_scalars(info: dict[str, Any]) -> dict[str, float]:
    """TensorBoard tag → value for one epoch's record (the "epoch" event: a line of the run's metrics file)."""
    r = EpochRecord.from_dict(info)
    scalars = {"lr": r.lr, "time/epoch_s": r.seconds, "time/images_per_s": r.images_per_s,
               "time/step_ms": 1000.0 * r.seconds / max(1, r.steps)}
    for key, value in r.terms.items():
        if not isinstance(value, (int, float)):
            continue
        if key.startswith("mi_"):
            scalars[f"mi/{key.removeprefix('mi_')}"] = value
        else:
            scalars["loss/total" if key == "loss" else f"loss/{key}"] = value
    for split, acc, loss in (("train", r.train_acc, None), ("val", r.val_acc, r.val_loss),
                             ("test", r.test_acc, r.test_loss)):
        if acc is not None:
            scalars[f"accuracy/{split}"] = acc
        if loss is not None:
            scalars[f"eval_loss/{split}"] = loss
    return scalars


class TensorBoardLog:
    """An event consumer (`fit(on_event=...)`'s signature) writing each epoch's scalars to a SummaryWriter."""

    def __init__(self, writer: Any):
        self.writer = writer

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch":
            for tag, value in epoch_scalars(info).items():
                self.writer.add_scalar(tag, value, info["epoch"])
            self.writer.flush()  # a killed run keeps its curves up to its last epoch

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(run: str | Path, start_epoch: int = 0) -> TensorBoardLog | None:
    """The run's event log in RUN/tb/, or None where tensorboard is not installed or MIMKD_TENSORBOARD=0.
    `start_epoch`: the epochs already trained (a resume): anything an earlier file logged from there on is
    superseded."""
    if os.environ.get(ENVIRONMENT, "1").strip() == "0":
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch's writer needs the tensorboard package
        return None
    purge = start_epoch + 1 if start_epoch else None
    return TensorBoardLog(SummaryWriter(str(RunDir(run).tensorboard), purge_step=purge))
