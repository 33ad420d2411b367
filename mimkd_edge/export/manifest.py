"""export/manifest.json: what was exported, from what, with what, and how well it matches PyTorch.

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
    path = Path(folder)
    path = path / MANIFEST if path.is_dir() else path
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no export manifest here (run `mimkd-edge export` first)") from None
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None


def verify_manifest(folder: str | Path) -> list[str]:
    """Problems found re-hashing every file the manifest lists (empty when all match)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    root = folder if folder.is_dir() else folder.parent
    problems = []
    for artifact in manifest.get("artifacts", []):
        for f in artifact["files"]:
            p = root / f["path"]
            if not p.is_file():
                problems.append(f"{p}: missing")
            elif p.stat().st_size != f["size"] or sha256_file(p) != f["sha256"]:
                problems.append(f"{p}: differs from the manifest (size or sha256)")
    return problems
