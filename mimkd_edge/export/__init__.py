"""Export a finished run for the edge: ONNX and OpenVINO IR (FP32, FP16, INT8), each proven
against PyTorch on real test images, described by the export folder's manifest.

    from mimkd_edge.export import ExportPlan, export_run
    result = export_run("runs/conv4_mp", ExportPlan(onnx=True, openvino=True, int8=True))
    result.manifest.artifacts     # path, size, sha256, precisions, parity, test accuracy, ...
    result.failures               # what was asked for and not published: figure missed, remedy

Pieces, usable alone: onnx_export.export_onnx, openvino_export.convert_onnx / save_ir,
quantize.quantize_openvino / quantize_onnx, parity.measure_parity; the manifest is rundir.manifest.
The names below load lazily: the plan (export/plan.py) imports no torch, so the CLI reads its
defaults without loading the pipeline.
"""

_PUBLIC = {"EXIT_INCOMPLETE": "pipeline", "ArtifactFailure": "pipeline", "ExportPlan": "plan",
           "ExportResult": "pipeline", "export_run": "pipeline"}
__all__ = ["EXIT_INCOMPLETE", "ArtifactFailure", "ExportPlan", "ExportResult", "export_run"]  # _PUBLIC's keys


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
