"""What a benchmark runs: a run's verified artifacts, each paired with the backend that runs it.

.onnx files run on onnxruntime, OpenVINO IRs on openvino, ncnn graphs on ncnn, .pte programs on
executorch (backends.BACKEND_OF_FORMAT); an FP32 .onnx is also given to OpenVINO where the manifest has
no FP32 IR. The PyTorch eager student (the run's weights) is the "torch"
backend, fp32. With `ov_compute` = ("f32", "bf16") each FP32/FP16 IR also runs with OpenVINO asked
to compute in bf16 (label "...@bf16", its accuracy cached on its own).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..provenance import sha256_file
from ..rundir import Manifest, ManifestArtifact, RunDir
from ..rundir.manifest import read_artifact
from .backends import BACKEND_OF_FORMAT
from .session import ArtifactBytes
from .sidecar import SIDECAR_SUFFIX


@dataclass(frozen=True)
class BenchArtifact:
    label: str  # e.g. "onnx-fp32", "openvino-int8", "torch-fp32"
    path: Path  # the file a session opens (the run's weights for torch)
    format: str  # "pytorch" | "onnx" | "openvino-ir" | "ncnn" | "executorch-pte"
    backend: str
    storage_precision: str
    sha256: str
    size_bytes: int
    compute: str = "f32"  # OpenVINO's INFERENCE_PRECISION_HINT ("f32", "bf16"); f32 elsewhere
    record: ManifestArtifact | None = None  # its manifest entry (None for the torch student)

    @property
    def cache_backend(self) -> str:
        """The accuracy cache's backend key: a bf16-computing OpenVINO session is its own entry."""
        return self.backend if self.compute == "f32" else f"{self.backend}@{self.compute}"

    def read(self) -> ArtifactBytes:
        """Its files read once, each hashed against the manifest (rundir.manifest.read_artifact): what
        every session of this artifact is built from, so the rows are of the bytes that were checked."""
        return artifact_bytes(self.path.parent, self.record)


def artifact_bytes(folder: Path, record: ManifestArtifact) -> ArtifactBytes:
    """The files of manifest entry `record` in export folder `folder`, read once and each hashed against the
    manifest: the main file, its weights (.bin) and its sidecar metadata (.json), where it has them."""
    data = read_artifact(folder, record)
    rest = record.files[1:]
    weights = [data[f.path] for f in rest if f.path.endswith(".bin")]
    sidecar = [data[f.path] for f in rest if f.path.endswith(SIDECAR_SUFFIX)]
    return ArtifactBytes(folder / record.path, data[record.path], weights[0] if weights else None,
                         sidecar[0] if sidecar else None)


def list_artifacts(run: Path, manifest: Manifest | None, backends: tuple[str, ...], precisions: tuple[str, ...],
                   ov_compute: tuple[str, ...] = ("f32",), weights: tuple[str, int] | None = None,
                   export: Path | None = None) -> list[BenchArtifact]:
    """The artifacts of `run` in `backends` × `precisions`, each paired with the backend that runs it.
    `weights`: (sha256, size) of the run's weights as loaded (LoadedRun), else the file is hashed here.
    `export`: the folder `manifest` was verified in (rundir.verified_export), by default the run's export."""
    out: list[BenchArtifact] = []
    if "torch" in backends and "fp32" in precisions:
        path = RunDir(run).weights
        sha, size = weights or (sha256_file(path), path.stat().st_size)
        out.append(BenchArtifact("torch-fp32", path, "pytorch", "torch", "fp32", sha, size))
    if manifest is None:
        return out
    ir_precisions = {a.storage_precision for a in manifest.artifacts if a.format == "openvino-ir"}
    for a in manifest.artifacts:
        if a.storage_precision not in precisions:
            continue
        art = _from_manifest(export or RunDir(run).export, a)
        if a.format == "onnx":
            if "onnxruntime" in backends:
                out.append(art)
            if "openvino" in backends and a.storage_precision == "fp32" and "fp32" not in ir_precisions:
                out.extend(_ov_variants(replace(art, backend="openvino"), ov_compute))
        elif art.backend in backends:
            out.extend(_ov_variants(art, ov_compute) if art.backend == "openvino" else [art])
    return out


def _from_manifest(export: Path, a: ManifestArtifact) -> BenchArtifact:
    backend = BACKEND_OF_FORMAT.get(a.format, a.backend)
    return BenchArtifact(a.name, export / a.path, a.format, backend, a.storage_precision,
                         a.files[0].sha256, sum(f.size for f in a.files), record=a)  # checked again by `read`


def _ov_variants(art: BenchArtifact, ov_compute: tuple[str, ...]) -> list[BenchArtifact]:
    """One artifact per OpenVINO compute precision asked for; INT8 IRs run at f32 only (their
    quantised layers compute in int8 whatever the hint; the rest stays f32)."""
    hints = ("f32",) if art.storage_precision == "int8" else ov_compute
    return [art if h == "f32" else replace(art, label=f"{art.label}@{h}", compute=h) for h in hints]
