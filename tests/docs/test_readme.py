"""The README and the docs site: the README stays short, its command (b) is what CI runs, the project
points at no file outside its tree, and the CLI reference page lists every command and option."""

import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from mimkd_edge.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 250
# files of the workspace this project grew up in, which a user's clone does not have (spelt in pieces so
# that this file does not match its own search)
OUTSIDE = ("shared/" + "reference", "DESIGN" + ".md", "STACK" + ".md")


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES}; the rest goes to docs/)"


def test_readme_command_b_is_what_ci_runs():
    text = README.read_text()
    section = text[text.index("**(b)"):]
    command_b = _bash_blocks(section)[0].strip()
    assert "\n" not in command_b
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command_b in ci, f".ci/run does not run README (b): {command_b!r}"
    assert "mkdocs build --strict" in command_b and "'.[test,docs]'" in command_b


def test_readme_command_a_is_one_line():
    text = README.read_text()
    section = text[text.index("**(a)"):text.index("**(b)")]
    assert len(_bash_blocks(section)[0].strip().splitlines()) == 1


def test_no_reference_to_files_outside_the_repository():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    hits = []
    for name in listed:
        path = ROOT / name
        if "results" in Path(name).parts or not path.is_file() or path.suffix in (".png", ".safetensors", ".bin"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        hits += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if any(o in line for o in OUTSIDE)]
    assert not hits, f"references to files outside the repository: {hits}"


def test_every_docs_page_in_the_nav_exists():
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    assert "cli.md" in nav and "method.md" in nav
    missing = [page for page in nav if not (ROOT / "docs" / page).is_file()]
    assert not missing, missing


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def test_cli_reference_lists_every_command_and_option():
    markdown = pytest.importorskip("markdown")
    pytest.importorskip("mkdocs_click")
    page = (ROOT / "docs" / "cli.md").read_text()
    assert ":module: mimkd_edge.cli" in page and ":command: main" in page
    html = markdown.markdown(page, extensions=["mkdocs-click", "tables", "attr_list"])
    for path, cmd in _commands(main):
        assert f"mimkd-edge {' '.join(path)}" in html, path
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in html, (path, opt)
