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


def test_a_long_job_step_prints_lines_without_a_terminal(monkeypatch, capsys):
    import time

    from mimkd_edge.console import activity

    monkeypatch.setattr(console_module, "PLAIN_PROGRESS_SECONDS", 0.05)
    with activity("exporting") as status:
        status.update("calibrating INT8 on 300 images")
        time.sleep(0.4)  # one long step: the log hears of it while it runs, not only after
    out = capsys.readouterr().out
    assert "calibrating INT8 on 300 images (still running" in out


def test_a_short_job_prints_no_progress_line(monkeypatch, capsys):
    from mimkd_edge.console import activity

    monkeypatch.setattr(console_module, "PLAIN_PROGRESS_SECONDS", 3600.0)
    with activity("exporting") as status:
        status.update("writing the manifest")
    assert capsys.readouterr().out == ""  # an error after it stays the one line it is


def test_tables_keep_whole_names_without_a_terminal(monkeypatch, capsys):
    from mimkd_edge.console import console, table

    monkeypatch.delenv("COLUMNS", raising=False)
    name = "digits-conv4_mp-mimkd-" + "x" * 100
    console.print(table("runs", ["name", "accuracy"], [[name, 93.6]]))
    assert any(name in line and "93.6" in line for line in capsys.readouterr().out.splitlines())
