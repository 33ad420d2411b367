"""Export a finished run for the edge: ONNX and OpenVINO IR (FP32, FP16, INT8), each proven
against PyTorch on real test images, described by a manifest.json.

    from mimkd_edge.export import export_run
    result = export_run("runs/conv4_mp", onnx=True, openvino=True, int8=True)
    result.manifest["artifacts"]  # path, size, sha256, precisions, parity, test accuracy, ...
    result.failures               # what was asked for and not published: figure missed, remedy

Pieces, usable alone: onnx_export.export_onnx, openvino_export.onnx_to_ir / save_ir,
quantize.quantize_openvino / quantize_onnx, parity.measure_parity / accuracy, manifest.*.
"""

from .pipeline import EXIT_INCOMPLETE, ArtifactFailure, ExportResult, export_run

__all__ = ["EXIT_INCOMPLETE", "ArtifactFailure", "ExportResult", "export_run"]
