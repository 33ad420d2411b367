"""Training progress without a terminal (a log file, CI): step lines as well as epoch lines."""

from mimkd_edge import console as console_module
from mimkd_edge.console import TrainingProgress


def test_non_terminal_log_gets_periodic_step_lines(monkeypatch, capsys):
    monkeypatch.setattr(console_module, "PLAIN_PROGRESS_SECONDS", 0.0)
    with TrainingProgress() as progress:
        assert progress.progress.disable  # pytest's captured stdout is no terminal
        progress("start", {"epochs": 2, "start_epoch": 0, "steps": 4, "device": "cpu", "out": "x",
                           "train_size": 8, "test_size": 4})
        for step in (1, 2):
            progress("step", {"epoch": 0, "step": step, "steps": 4, "loss": 1.5, "train_acc": 50.0,
                              "images_per_s": 10.0})
    lines = [line for line in capsys.readouterr().out.splitlines() if "step" in line and "/4" in line]
    assert len(lines) == 2 and lines[1].startswith("epoch 1/2 step 2/4: loss 1.500")


def test_step_lines_are_rate_limited(monkeypatch, capsys):
    monkeypatch.setattr(console_module, "PLAIN_PROGRESS_SECONDS", 3600.0)
    with TrainingProgress() as progress:
        progress("start", {"epochs": 1, "start_epoch": 0, "steps": 4, "device": "cpu", "out": "x",
                           "train_size": 8, "test_size": 4})
        for step in (1, 2, 3):
            progress("step", {"epoch": 0, "step": step, "steps": 4, "loss": 1.0, "train_acc": 50.0,
                              "images_per_s": 10.0})
    assert "step 1/4" not in capsys.readouterr().out
