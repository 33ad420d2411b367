"""The one rich Console, the one-line error renderer, and the training progress display.

Every string printed through here is made inert first (`inert`): class names from an artifact, a recipe
name or a path quoted in an error line come from files anyone may have written, and a terminal obeys
the escape codes in what it prints (clear the screen, retitle the window, forge a table row).
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

PLAIN_WIDTH = 1000  # columns when writing to no terminal


class _Console(Console):
    """rich's Console, except that writing to no terminal (a log file, CI, a pipe) it does not assume 80
    columns: a table keeps whole names and paths instead of cutting them to "digits-co…", and a line is
    not broken. COLUMNS, where it is set, still rules."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in self._environ:
            return ConsoleDimensions(PLAIN_WIDTH, size.height)
        return size


console = _Console()
err_console = _Console(stderr=True)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0 (ESC among them), DEL, C1 (CSI...), U+2028/9
_BREAKS = "\t\n\v\f\r\x85\u2028\u2029"


def inert(text: str) -> str:
    """`text` without control characters: a line break or tab becomes a space (one line stays one line,
    a table cell stays one row), every other C0/C1 code is dropped (ESC and CSI start terminal commands)."""
    return _CONTROL.sub(lambda m: " " if m.group() in _BREAKS else "", text)


def plain(message: str, label: str = "", label_style: str = "", style: str = "") -> Text:
    """`label message` as rich Text: paths and values are printed as they are, never read as markup
    (a run called "[/x]" must not crash the printer or lose characters), and made `inert`."""
    message, label = inert(str(message)), inert(label)
    return Text.assemble((label, label_style), " ", (message, style)) if label else Text(message, style=style)


def say(message: str, label: str = "", label_style: str = "", style: str = "") -> None:
    console.print(plain(message, label, label_style, style))


def error_line(message: str) -> None:
    """One line, no traceback: what is wrong and where. "Error:" as click writes its own usage errors."""
    err_console.print(plain(message, "Error:", "bold red"), highlight=False, soft_wrap=True)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """A results table; cells and title are plain text (never parsed as rich markup)."""
    t = Table(title=Text(inert(title)), title_justify="left")
    for c in columns:
        t.add_column(inert(c), justify="left" if c in ("model", "name", "maps", "term", "key") else "right")
    for r in rows:
        t.add_row(*[Text(fmt(v)) for v in r])
    return t


def fmt(v: Any) -> str:
    """A table cell's text (made `inert`)."""
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else inert(str(v))


PLAIN_PROGRESS_SECONDS = 30.0  # without a terminal (a log file, CI): a progress line at most this often


@contextmanager
def activity(message: str):
    """What a long job (export, bench, probe) is doing now; the object yielded takes `.update(message)`.
    On a terminal, rich's spinner line. Elsewhere (a log file, CI) a spinner prints nothing at all, so
    the current step is printed as a line instead, once PLAIN_PROGRESS_SECONDS have passed since the
    job began or since the last line: a log never sits silent through a long step, and a short job
    prints only its result."""
    if console.is_terminal:
        with console.status(plain(message)) as live:
            yield live
        return
    log = _LogStatus(message)
    try:
        yield log
    finally:
        log.stop()


class _LogStatus:
    """activity() without a terminal: the current step as a line, rate-limited, with a heartbeat thread."""

    def __init__(self, message: str) -> None:
        # the clock starts now: a job done within the interval prints nothing but its result (and an
        # error stays the one line it is)
        self.message, self.since, self.printed = str(message), time.monotonic(), None
        self.last_line = self.since
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def update(self, message: Any) -> None:
        text = message.plain if isinstance(message, Text) else str(message)
        with self._lock:
            if text != self.message:
                self.message, self.since = text, time.monotonic()
            self._emit()

    def _emit(self) -> None:
        now = time.monotonic()
        if now - self.last_line < PLAIN_PROGRESS_SECONDS:
            return
        running = f" (still running, {now - self.since:.0f} s)" if self.printed == (self.message, self.since) else ""
        say(self.message + running)
        self.last_line, self.printed = now, (self.message, self.since)

    def _heartbeat(self) -> None:
        while not self._stopped.wait(min(PLAIN_PROGRESS_SECONDS, 5.0)):
            with self._lock:
                self._emit()

    def stop(self) -> None:
        self._stopped.set()
        self._beat.join()

_HIDDEN = {"epoch", "step", "steps", "images_per_s", "train_acc"}


class TrainingProgress:
    """Renders the trainer's events: a bar per epoch with loss terms, accuracy and images/s."""

    def __init__(self) -> None:
        self.progress = Progress(TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=console, transient=False,
                                 disable=not console.is_terminal)
        self.task = None
        self.epochs = 0
        self.last_line = time.monotonic()

    def __enter__(self) -> TrainingProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, kind: str, info: dict[str, Any]) -> None:
        handler = {"start": self._start, "step": self._step, "epoch": self._epoch}.get(kind)
        if handler is not None:
            handler(info)
        elif kind == "warning":
            say(info["message"], "warning:", "yellow")

    def _start(self, info: dict[str, Any]) -> None:
        self.epochs, self.steps = info["epochs"], info["steps"]
        if info.get("data"):  # which setting chose the data: --data-dir > data.root > MIMKD_DATA
            origin = info.get("data_origin") or "?"
            say(f"data: {info['data']} ({origin if origin == 'generated' else 'from ' + origin})")
        resuming = f" (resuming at epoch {info['start_epoch'] + 1})" if info["start_epoch"] else ""
        val = f" / {info['val_size']:,} validation" if info.get("val_size") else ""
        say(f"training on {info['device']}: {info['train_size']:,} train{val} / {info['test_size']:,} test images, "
            f"{info['steps']} steps per epoch → {info['out']}{resuming}")

    def _step(self, info: dict[str, Any]) -> None:
        if self.task is None or self.progress.tasks[self.task].fields["epoch"] != info["epoch"] + 1:
            if self.task is not None:
                self.progress.update(self.task, visible=True)
            self.task = self.progress.add_task("", total=info["steps"], epoch=info["epoch"] + 1,
                                               epochs=self.epochs, stats="")
        stats = " ".join(f"{k} {v:.3f}" for k, v in info.items() if k not in _HIDDEN)
        stats += f" acc {info['train_acc']:.1f}% {info['images_per_s']:.0f} img/s"
        self.progress.update(self.task, completed=info["step"], stats=stats)
        if self.progress.disable and time.monotonic() - self.last_line >= PLAIN_PROGRESS_SECONDS:
            console.print(f"epoch {info['epoch'] + 1}/{self.epochs} step {info['step']}/{info['steps']}: {stats}")
            self.last_line = time.monotonic()

    def _epoch(self, info: dict[str, Any]) -> None:
        from .rundir.summary import EpochRecord

        r = EpochRecord.from_dict(info)
        line = f"epoch {r.epoch}/{self.epochs}: loss {r.loss:.4f} train {r.train_acc:.2f}%"
        if r.val_acc is not None:
            line += f" val {r.val_acc:.2f}%"
        if r.test_acc is not None:
            line += f" test {r.test_acc:.2f}%"
        line += f" ({r.seconds:.1f} s, {r.images_per_s:.0f} img/s)"
        (self.progress.console if not self.progress.disable else console).print(line)

