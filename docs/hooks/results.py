"""MkDocs hook: publish the generated results pages of bench/results with the site.

The results pages (bench/results/*/README.md, bench/results/*.md, their figures) are generated from the committed
run files and live outside docs/, so that the repository stays their one copy. The docs link to them by their
path in the repository (`../bench/results/cpu/README.md` from a page of docs/), which is right when the Markdown
is read in the repository; for the site, this hook adds those files to the build under `bench/results/...` and
rewrites such links to point there. Run folders (`runs/`) are left out: they hold weights and JSON, not pages.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = "bench/results"
PUBLISHED = (".md", ".png", ".svg")
_LINK = re.compile(r"\]\(((?:\.\./)+)(" + re.escape(RESULTS) + r"/[^)\s]*)\)")


def on_files(files: Files, config) -> Files:
    for path in sorted((ROOT / RESULTS).rglob("*")):
        rel = path.relative_to(ROOT)
        if path.is_file() and path.suffix in PUBLISHED and "runs" not in rel.parts:
            files.append(File(rel.as_posix(), str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """In a page of docs/, `](../bench/results/X)` (one `../` more than the page's depth) → `](bench/results/X)`
    relative to the docs root, where `on_files` put X."""
    src = page.file.src_uri
    if src.startswith(RESULTS + "/"):
        return markdown
    depth = src.count("/")

    def relink(m: re.Match) -> str:
        ups = len(m.group(1)) // 3
        if ups != depth + 1:
            return m.group(0)
        return f"]({'../' * depth}{m.group(2)})"

    return _LINK.sub(relink, markdown)
