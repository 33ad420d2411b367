"""The metadata of an artifact whose format has none of its own (ncnn's .param/.bin, ExecuTorch's .pte):
a JSON object of string keys and values beside the file, `<file>.json`, with the same keys an ONNX
graph's metadata_props or an IR's rt_info hold (classes, input_size, mean, std, normalisation_baked, ...).

The export lists it among the artifact's files in the manifest, so its hash covers it as it covers the
weights: a sidecar edited after the export is refused like a changed .bin. Sessions read it from the
bytes the caller checked (ArtifactBytes.sidecar) or from beside the file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError

SIDECAR_SUFFIX = ".json"


def sidecar_path(main: str | Path) -> Path:
    """`model_fp32.pte` → `model_fp32.pte.json`: the main file's whole name plus .json, never ambiguous
    between two formats that share a stem."""
    main = Path(main)
    return main.with_name(main.name + SIDECAR_SUFFIX)


def sidecar_text(metadata: dict[str, str]) -> str:
    """The sidecar's text for `metadata` (every value a string, as in ONNX metadata_props)."""
    return json.dumps({str(k): str(v) for k, v in metadata.items()}, indent=2, sort_keys=True) + "\n"


def parse_sidecar(data: bytes | None, main: Path) -> dict[str, str]:
    """The metadata of `main` from its sidecar's bytes (read from beside it when `data` is None): a JSON
    object of strings, or one UserError naming the file."""
    path = sidecar_path(main)
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"{main}: its metadata file {path.name} is missing (copy it with the artifact, or "
                            "export it again)") from None
        except OSError as e:
            raise UserError(f"{path}: unreadable ({e.strerror or e})") from None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: not a JSON metadata file ({e})") from None
    if not isinstance(raw, dict) or any(not isinstance(v, str) for v in raw.values()):
        raise UserError(f"{path}: expected a JSON object of string values (the artifact's metadata)")
    return raw
