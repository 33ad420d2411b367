"""The CLI holds no default that the library also holds: an option named as an ExportPlan / BenchConfig
field takes its default and choices from there, and the library checks the value; a change in one
place cannot silently diverge from the other."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import assert_one_line_error

from mimkd_edge.cli import main
from mimkd_edge.export.plan import EXPORTERS, OVERFLOW_FIXES, ExportPlan
from mimkd_edge.runtime.bench_config import BenchConfig

# command, the library object its options build, the options that are the command's own (no field),
# and the fields whose CLI default differs on purpose
COMMANDS = [
    ("export", ExportPlan, {"run", "out", "data_dir"}, {"onnx", "openvino"}),  # the user says what to export
    ("bench", BenchConfig, {"runs", "cpu", "results", "data_dir"}, {"ov_compute"}),  # interactively: auto
]


def _defaults(name: str) -> dict:
    """The command's option values when none is given, as the command receives them (callbacks run)."""
    command = main.commands[name]
    with command.make_context(name, []) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("name, library, own, _", COMMANDS)
def test_every_option_is_a_library_field_or_the_commands_own(name, library, own, _):
    fields = {f.name for f in dataclasses.fields(library)}
    params = {p.name for p in main.commands[name].params if p.name != "help"}
    assert params - own <= fields, params - own - fields


@pytest.mark.parametrize("name, library, own, different", COMMANDS)
def test_option_defaults_are_the_librarys(name, library, own, different):
    defaults = _defaults(name)
    for field in dataclasses.fields(library):
        if field.name in defaults and field.name not in different:
            assert defaults[field.name] == field.default, field.name


def test_option_choices_are_the_librarys():
    choices = {p.name: tuple(p.type.choices) for p in main.commands["export"].params
               if isinstance(p.type, click.Choice)}
    assert choices == {"exporter": EXPORTERS, "overflow_fix": OVERFLOW_FIXES}


@pytest.mark.parametrize("args, fragments", [
    (["bench", "--backend", "tensorrt"], ["--backend: expected one or more of torch, onnxruntime, openvino",
                                          'got "tensorrt"']),
    (["bench", "--threads", "0"], ["--threads: expected positive integers"]),
    (["bench", "--seconds", "1", "--iters", "3"], ["--seconds, --iters", "exclude each other"]),
    (["export", "--onnx", "--calib", "0"], ["--calib", "at least one image"]),
    (["export", "--onnx", "--int8", "--max-drop", "0"], ["--max-drop", "> 0"]),
])
def test_the_librarys_check_is_one_line_naming_the_option(args, fragments):
    assert_one_line_error(CliRunner().invoke(main, args), *fragments)


def test_reading_the_defaults_loads_neither_torch_nor_numpy():
    code = "import sys, mimkd_edge.cli; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    root = Path(__file__).resolve().parents[2]  # this checkout's package, whatever the working directory
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                          cwd=root)
    assert done.stdout.strip() == "[]"


def test_plot_defaults_are_the_figures():
    from mimkd_edge.report.plot import BATCH, THREADS

    defaults = _defaults("plot")
    assert (defaults["threads"], defaults["batch"]) == (THREADS, BATCH)
