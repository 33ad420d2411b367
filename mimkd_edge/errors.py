"""Errors a user can act on. The CLI prints str() of these as one line, with no traceback."""

import importlib.util
import re


class UserError(Exception):
    """Bad input or a missing prerequisite: the message names the file/key/path and what is expected."""

    exit_code = 2


class DivergedError(UserError):
    """The loss went non-finite; the last good checkpoint is left untouched."""

    exit_code = 3


# The third-party packages a command may find missing (a device with one runtime, no torch), and what
# installs each: a missing one is reported in one line naming it, never as an import traceback.
INSTALL_HINTS = {
    "torch": "training, export and bench need it: in the clone, pip install -e . (README, Set up)",
    "torchvision": "training, export and bench need it: in the clone, pip install -e . (README, Set up)",
    "onnxruntime": "pip install onnxruntime onnx (or run the OpenVINO .xml artifact)",
    "onnx": "pip install onnx",
    "openvino": "pip install openvino (or run the .onnx artifact with onnxruntime)",
    "nncf": "pip install nncf",
    "ncnn": "pip install ncnn (runs .param graphs; no torch), or in the clone pip install -e '.[ncnn]'",
    "pnnx": "in the clone, pip install -e '.[ncnn]' (pnnx converts to ncnn)",
    "executorch": "in the clone, pip install -e '.[executorch]' (runs and makes .pte programs; needs torch)",
    "torchao": "in the clone, pip install -e '.[executorch]'",
    "matplotlib": "pip install matplotlib",
    "scipy": "pip install scipy",
    "safetensors": "pip install safetensors",
}


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def missing_package_line(e: ImportError, command: str | None) -> str | None:
    """`mimkd-edge COMMAND needs PACKAGE, which is not installed here: how to install it`, or None when
    the import that failed is not one of INSTALL_HINTS' packages (then it is a bug, and its traceback helps)."""
    package = (e.name or "").split(".")[0]
    if package not in INSTALL_HINTS or not isinstance(e, ModuleNotFoundError) or _installed(package):
        return None  # an installed package that fails to import (a mismatch, a broken build): its traceback says why
    what = f"`mimkd-edge {command}`" if command else "this command"
    return f"{what} needs {package}, which is not installed here: {INSTALL_HINTS[package]}"



_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOILERPLATE = re.compile(r"^(Exception from \S+:\d+:?|Check '.*' failed at .*|FrontEnd API failed with \w+:?)$")


def one_line(e: BaseException, limit: int = 200) -> str:
    """`Type: first non-empty line of the message` (just `Type` when it is empty), ANSI colours removed,
    cut to `limit` characters: how a library's exception is quoted inside a one-line UserError."""
    text = _ANSI.sub("", str(e))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # OpenVINO prefixes the real reason with source locations: "Exception from src/...", "Check '...' failed at"
    useful = [ln for ln in lines if not _BOILERPLATE.match(ln)]
    first = (useful or lines or [""])[0]
    first = first if len(first) <= limit else first[: limit - 1] + "…"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
