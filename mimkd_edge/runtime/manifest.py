"""RUN/export/manifest.json: what was exported, from what, with what, and how well it matches PyTorch.

Written by export/pipeline.py, read by everything that runs an artifact (bench, ...). It lives here,
below export, so that readers need not import the exporter. `load_verified` is the only way readers
get a manifest: it checks the structure and re-hashes every listed file, so nothing is measured or
reported from a file that is no longer the one that was proven.

    {
      "schema": 1,
      "run": ..., "model": ..., "recipe": {"name", "sha256", "path"},
      "input": {"name", "shape", "dtype", "normalisation_baked", "scale", "mean", "std"},
      "classes": [...],
      "exporter": "dynamo", "opset": 23,
      "parity_set": {"images", "split", "selection", "indices_sha256"},
      "calibration_set": {"images", "split", "transform", "selection", "indices_sha256"} | null,
      "pytorch": {"test_accuracy", "run_summary_test_accuracy"},
      "artifacts": [
        {"name", "path", "files": [{"path", "size", "sha256"}...], "size", "sha256", "format",
         "backend", "storage_precision", "inference_precision", "opset", "parity": {...},
         "test_accuracy", "accuracy_delta", "quantisation": {...} | null}
      ],
      "failed": [{"name", "path", "backend", "reason", "remedy", "parity": {...} | null}],
      "versions": {...}, "git_commit": ..., "created_at": ...
    }

Paths are relative to the folder holding the manifest. `sha256` and `size` of an artifact are those
of its main file (.onnx or .xml); `files` lists every file it needs (an IR's .bin too), each with
its own size and sha256; `total_size` sums them. `failed` lists the artifacts that were asked for
and missed their check (not published, no files): the figure they missed and what to try.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine.checkpoint import write_json
from ..errors import UserError
from ..provenance import sha256_file

MANIFEST = "manifest.json"
SCHEMA = 1


def file_record(path: Path, root: Path) -> dict:
    return {"path": path.relative_to(root).as_posix(), "size": path.stat().st_size, "sha256": sha256_file(path)}


def artifact_record(name: str, files: list[Path], root: Path, **fields) -> dict:
    """One artifact's entry: its files (main file first) with sizes and hashes, plus `fields`."""
    records = [file_record(f, root) for f in files]
    return {"name": name, "path": records[0]["path"], "size": records[0]["size"], "sha256": records[0]["sha256"],
            "total_size": sum(r["size"] for r in records), "files": records, **fields}


def write_manifest(folder: Path, manifest: dict) -> Path:
    path = Path(folder) / MANIFEST
    write_json(path, manifest)
    return path


def read_manifest(folder: str | Path) -> dict:
    """The manifest in `folder` (or at that path), checked for the structure readers rely on."""
    path = Path(folder)
    path = path / MANIFEST if path.is_dir() else path
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no export manifest here (run `mimkd-edge export` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None
    problem = _structure_problem(manifest)
    if problem:
        raise UserError(f"{path}: not an export manifest: {problem} (export the run again)")
    return manifest


def _structure_problem(manifest) -> str | None:
    if not isinstance(manifest, dict):
        return f"expected a JSON object, found {type(manifest).__name__}"
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, list):
        return "`artifacts` must be a list"
    for i, a in enumerate(artifacts):
        if not isinstance(a, dict) or not isinstance(a.get("path"), str):
            return f"artifacts[{i}] needs a `path` string"
        files = a.get("files")
        if not isinstance(files, list) or not files or any(
                not isinstance(f, dict) or not isinstance(f.get("path"), str) or not isinstance(f.get("sha256"), str)
                or not isinstance(f.get("size"), int) for f in files):
            return f"artifacts[{i}] ({a['path']}) needs `files`: a list of {{path, size, sha256}}"
        if files[0]["path"] != a["path"]:
            return f"artifacts[{i}]: its first file must be its `path` ({a['path']})"
    return None


def verify_manifest(folder: str | Path, manifest: dict | None = None) -> list[str]:
    """Problems found re-hashing every file the manifest lists (empty when all match)."""
    folder = Path(folder)
    manifest = manifest if manifest is not None else read_manifest(folder)
    root = folder if folder.is_dir() else folder.parent
    problems = []
    for artifact in manifest["artifacts"]:
        for f in artifact["files"]:
            p = root / f["path"]
            if p.resolve().parent != root.resolve():
                problems.append(f"{p}: outside the export folder")
            elif not p.is_file():
                problems.append(f"{p}: missing")
            elif p.stat().st_size != f["size"] or sha256_file(p) != f["sha256"]:
                problems.append(f"{p}: differs from the manifest (size or sha256)")
    return problems


def load_verified(folder: str | Path) -> dict:
    """The manifest of export folder `folder`, after every file it lists was re-hashed and found as
    exported; otherwise a one-line UserError naming the first file that differs."""
    manifest = read_manifest(folder)
    problems = verify_manifest(folder, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}: the export was changed after it was proven; "
                        "export the run again")
    return manifest
