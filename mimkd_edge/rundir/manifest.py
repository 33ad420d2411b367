"""An export folder's manifest: what was exported, from what, with what, and how well it matches PyTorch.

Written by export/pipeline.py, read by everything that runs an artifact (bench, ...). `load_verified`
is the only way readers get a manifest: it checks the structure, re-hashes every listed file, and
only then builds the typed `Manifest`, so nothing is measured or reported from a file that is no
longer the one that was proven.

    {
      "schema": 1,
      "run": ..., "model": ..., "recipe": {"name", "sha256", "path"}, "weights": {"path", "size", "sha256"},
      "input": {"name", "shape", "dtype", "normalisation_baked", "scale", "mean", "std"},
      "classes": [...], "output": "logits",
      "exporter": "dynamo", "opset": 23, "export_seconds": ..., "rewrites": ["fold-channel-shuffle"],
      "data": {"dataset", "source", "test_images"},
      "parity_set": {"images", "split", "selection", "indices_sha256"},
      "thresholds": {"fp32_max_abs_diff", "min_top1_agreement"},
      "calibration_set": {"images", "split", "transform", "selection", "indices_sha256"} | null,
      "pytorch": {"test_accuracy", "run_summary_test_accuracy"},
      "artifacts": [
        {"name", "path", "files": [{"path", "size", "sha256"}...], "size", "sha256", "total_size", "format",
         "backend", "storage_precision", "inference_precision", "opset", "parity": {...},
         "test_accuracy", "accuracy_delta", "quantisation": {...} | null}
      ],
      "failed": [{"name", "path", "backend", "reason", "remedy", "parity": {...} | null}],
      "versions": {...}, "git_commit": ..., "created_at": ...
    }

Paths are relative to the folder holding the manifest. `sha256` and `size` of an artifact are those
of its main file (.onnx, .xml, .ncnn.param or .pte); `files` lists every file it needs (an IR's or an
ncnn graph's .bin, the sidecar .json of metadata that ncnn and ExecuTorch files carry beside them), each
with its own size and sha256; `total_size` sums them. `rewrites` names the export-time rewrites
(export/rewrites.py) in the exported graph ([] for the model as trained; absent in older manifests);
an INT8 artifact's `quantisation.rewrites` names those of the graph it was quantised from (the same,
plus the INT8-only ones).
`failed` lists the artifacts that were asked for and missed their check (not published, no files):
the figure they missed and what to try. `recipe.sha256` and `weights.sha256` are those of the run's
recipe and weights the export was made from (the bytes it loaded): an export older than the run is
refused by its readers (rundir/staleness.py; `weights` is absent in older manifests).

Readers that run an artifact take its bytes from `read_artifact`, which hashes the very bytes it
returns: what is checked is what is used, even when a new export publishes in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..atomic import write_json
from ..errors import UserError
from ..provenance import sha256_file
from .layout import manifest_path

SCHEMA = 1


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the export folder
    size: int
    sha256: str


@dataclass(frozen=True)
class ManifestArtifact:
    name: str  # "onnx-fp32", "openvino-int8", "ncnn-fp32", "executorch-int8", ...
    path: str  # the main file (.onnx, .xml, .ncnn.param or .pte)
    files: list[FileRecord]  # every file it needs, main file first
    format: str  # "onnx" | "openvino-ir" | "ncnn" | "executorch-pte"
    backend: str  # the runtime it was proven on: "onnxruntime" | "openvino" | "ncnn" | "executorch"
    storage_precision: str  # "fp32" | "fp16" | "int8"
    size: int = 0
    sha256: str = ""
    total_size: int = 0
    inference_precision: str | None = None
    opset: int | None = None
    parity: dict = field(default_factory=dict)
    test_accuracy: float | None = None
    accuracy_delta: float | None = None
    quantisation: dict | None = None


@dataclass(frozen=True)
class Manifest:
    model: str
    input: dict  # name, shape, dtype, normalisation_baked, scale, mean, std
    classes: list[str]
    artifacts: list[ManifestArtifact]
    schema: int = SCHEMA
    run: str = ""
    recipe: dict = field(default_factory=dict)  # name, path, sha256 (of its text) of the run's recipe
    weights: dict = field(default_factory=dict)  # path, size, sha256 of the run's weights file
    output: str = "logits"
    exporter: str | None = None
    opset: int | None = None
    export_seconds: float | None = None
    rewrites: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # dataset, source, test_images
    parity_set: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    calibration_set: dict | None = None
    pytorch: dict = field(default_factory=dict)  # test_accuracy, run_summary_test_accuracy
    failed: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    git_commit: str | None = None
    created_at: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> Manifest:
        """`raw` already passed the structure check; a missing required field is a TypeError naming it."""
        values = _known(cls, raw)
        values["artifacts"] = [_artifact(a) for a in raw["artifacts"]]
        return cls(**values)


def _known(cls, raw: dict) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


def _artifact(raw: dict) -> ManifestArtifact:
    values = _known(ManifestArtifact, raw)
    values["files"] = [FileRecord(**_known(FileRecord, f)) for f in raw["files"]]
    return ManifestArtifact(**values)


def file_record(path: Path, root: Path) -> FileRecord:
    return FileRecord(path.relative_to(root).as_posix(), path.stat().st_size, sha256_file(path))


def artifact_record(name: str, files: list[Path], root: Path, **details) -> ManifestArtifact:
    """One artifact's entry: its files (main file first) with sizes and hashes, plus `details`."""
    records = [file_record(f, root) for f in files]
    return ManifestArtifact(name=name, path=records[0].path, files=records, size=records[0].size,
                            sha256=records[0].sha256, total_size=sum(r.size for r in records), **details)


def write_manifest(folder: str | Path, manifest: Manifest) -> Path:
    path = manifest_path(folder)
    write_json(path, manifest.to_dict())
    return path


def listed_files(folder: str | Path) -> dict[str, FileRecord]:
    """The files the manifest in `folder` lists, by path, as it records them, without re-hashing them (none
    when there is none, or it is unreadable): what a new export may delete once it has replaced them, if
    they are still those files; which hashes a deployment choice may rest on."""
    try:
        raw = json.loads(manifest_path(folder).read_text(encoding="utf-8"))
        if _structure_problem(raw):
            return {}
        return {f["path"]: FileRecord(f["path"], f["size"], f["sha256"]) for a in raw["artifacts"] for f in a["files"]}
    except (OSError, ValueError):
        return {}


def still_listed_file(folder: Path, record: FileRecord) -> bool:
    """`record`'s file is in `folder` as the manifest listed it (a plain file, same size and sha256): ours to
    delete. A file of that name that another writer made since is not."""
    p = folder / record.path
    return (not p.is_symlink() and p.is_file() and p.resolve().parent == folder.resolve()
            and p.stat().st_size == record.size and sha256_file(p) == record.sha256)


def _read_raw(folder: str | Path) -> tuple[Path, dict]:
    """The manifest in `folder` (or at that path), checked for the structure readers rely on."""
    path = Path(folder)
    path = manifest_path(path) if path.is_dir() else path
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no export manifest here (run `mimkd-edge export` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable manifest ({e})") from None
    problem = _structure_problem(manifest)
    if problem:
        raise UserError(f"{path}: not an export manifest: {problem} (export the run again)")
    return path, manifest


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


def _verify(root: Path, manifest: dict) -> list[str]:
    """Problems found re-hashing every file the manifest lists (empty when all match)."""
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


def read_artifact(folder: str | Path, artifact: ManifestArtifact) -> dict[str, bytes]:
    """Every file of `artifact` (main file first), read once: each one's bytes, after hashing those very
    bytes against the manifest. A session built from them runs what was checked, even if the file
    is replaced or removed after (an export publishing mid-bench). One UserError when one differs."""
    root, out = Path(folder), {}
    for f in artifact.files:
        p = root / f.path
        if p.resolve().parent != root.resolve():
            raise UserError(f"{p}: outside the export folder; export the run again")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise UserError(f"{p}: unreadable ({e.strerror or e}); export the run again") from None
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise UserError(f"{p}: differs from the manifest (size or sha256): the export was changed after it "
                            "was proven; export the run again")
        out[f.path] = data
    return out


PREVIOUS = ".previous"  # inside an export folder: the export a publish is replacing, whole, until it is done


def verified_export(folder: str | Path) -> tuple[Path, Manifest]:
    """(the folder read, its verified manifest) for export folder `folder`. While a publish into it is
    under way, or after one was killed, the folder's files are no longer those its manifest lists; the
    export being replaced is then still whole in `folder/.previous` (export/pipeline.py `publish`) and is
    the one returned. Otherwise the one-line error of `load_verified` on `folder`."""
    folder = Path(folder)
    try:
        return folder, load_verified(folder)
    except UserError as current:
        previous = folder / PREVIOUS
        if manifest_path(previous).is_file():
            with contextlib.suppress(UserError):
                return previous, load_verified(previous)
        raise current from None


def load_verified(folder: str | Path) -> Manifest:
    """The manifest of export folder `folder`, after every file it lists was re-hashed and found as
    exported; otherwise a one-line UserError naming the first file that differs."""
    path, raw = _read_raw(folder)
    problems = _verify(path.parent, raw)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{problems[0]}{more}: the export was changed after it was proven; "
                        "export the run again")
    try:
        return Manifest.from_dict(raw)
    except TypeError as e:
        raise UserError(f"{path}: not an export manifest of this tool ({e}); export the run again") from None
