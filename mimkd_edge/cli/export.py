"""`mimkd-edge export`: a finished run → ONNX / OpenVINO / ncnn / ExecuTorch artifacts, each proven against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.plan import DEFAULT_OPSET, EXPORTERS, OVERFLOW_FIXES, TORCHSCRIPT_MAX_OPSET, ExportPlan
from . import main
from .options import from_options


@main.command()
@click.argument("run", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default RUN/export).")
@click.option("--data-dir", help="Data root or archive (beats MIMKD_DATA and the recipe's data.root).")
# The rest are ExportPlan's fields, by name: their defaults and choices are the plan's (export/plan.py),
# and the plan checks them. Only the formats (--onnx, --openvino, --ncnn, --executorch) differ: on the command
# line the user chooses.
@click.option("--onnx", is_flag=True, help="ONNX model (onnxruntime), model_fp32.onnx.")
@click.option("--openvino", is_flag=True, help="OpenVINO IR converted from the ONNX file, model_fp32.xml/.bin.")
@click.option("--ncnn", is_flag=True, help="ncnn graph converted by pnnx, model_fp32.ncnn.param/.bin + .json "
              "(needs the [ncnn] extra).")
@click.option("--executorch", is_flag=True, help="ExecuTorch program delegated to XNNPACK, model_fp32.pte + .json "
              "(needs the [executorch] extra).")
@click.option("--fp16", is_flag=True, default=ExportPlan.fp16,
              help="Also FP16 weights: an OpenVINO IR (with --openvino) and an ncnn graph (with --ncnn).")
@click.option("--int8", is_flag=True, default=ExportPlan.int8,
              help="Also INT8: NNCF for OpenVINO, onnxruntime static QDQ for ONNX, XNNPACKQuantizer for ExecuTorch.")
@click.option("--opset", type=int, default=ExportPlan.opset,
              help=f"ONNX opset (default: {DEFAULT_OPSET} with dynamo, {TORCHSCRIPT_MAX_OPSET} with torchscript).")
@click.option("--exporter", type=click.Choice(EXPORTERS), default=ExportPlan.exporter, show_default=True,
              help="torch.onnx exporter.")
@click.option("--calib", type=int, default=ExportPlan.calib, show_default=True,
              help="INT8 calibration images, from the training split, test-time transforms.")
@click.option("--max-drop", type=float, default=ExportPlan.max_drop,
              help="INT8 accuracy control: largest top-1 drop in points (NNCF, OpenVINO only).")
@click.option("--overflow-fix", type=click.Choice(OVERFLOW_FIXES), default=ExportPlan.overflow_fix,
              show_default=True, help="INT8 saturation remedy for CPUs without VNNI: 7-bit weights everywhere, in "
              "the first layer only (NNCF's default), or nowhere (VNNI/ARM targets).")
@click.option("--bake-normalisation", is_flag=True, default=ExportPlan.bake_normalisation,
              help="Put mean/std normalisation in the graph: inputs are then RGB scaled to [0, 1].")
@click.option("--parity-images", type=int, default=ExportPlan.parity_images, show_default=True,
              help="Test images (evenly spaced through the split) to compare logits with PyTorch on.")
@click.option("--min-agreement", type=float, default=ExportPlan.min_agreement, show_default=True,
              help="FP16/INT8 fail below this top-1 agreement (%) with PyTorch.")
@click.option("--rewrite/--no-rewrite", default=ExportPlan.rewrite, show_default=True,
              help="Export the faster equivalent form a model offers (e.g. ShuffleNetV2's channel shuffle folded "
              "into its convolutions), proven against the graph as trained; --no-rewrite exports that graph.")
def export(run, out, data_dir, **plan_fields):
    """Export RUN's student to ONNX, OpenVINO, ncnn and/or ExecuTorch (FP32, FP16, INT8), proven against PyTorch.

    RUN defaults to the most recently finished run under runs/. Every artifact is checked on real
    test images (FP32: max |Δ logits| ≤ 1e-4) and evaluated on the whole test split; the figures go
    to a manifest beside the artifacts. An artifact that fails its check is not published: the
    others are, each failure is one line (figure, remedy), and the exit code is 4.
    """
    from ..console import activity, console, error_line, plain, say
    from ..export import EXIT_INCOMPLETE, export_run
    from ..rundir import latest_run

    plan = from_options(ExportPlan, **plan_fields)
    if run is None:
        run = latest_run()
        say(f"no RUN given: exporting the most recently finished run {run}")
    with activity("exporting") as status:
        result = export_run(run, plan, out=out, data_dir=data_dir, progress=lambda m: status.update(plain(m)))
    if result.manifest is not None:
        console.print(_artifact_table(result))
    for note in result.notes:
        say(note, "note:", "yellow")
    for failure in result.failures:
        error_line(failure.line())
    if result.manifest_path is not None:
        say(f"manifest: {result.manifest_path}")
    if result.failures:
        published = len(result.manifest.artifacts) if result.manifest else 0
        error_line(f"{len(result.failures)} artifact(s) failed their check; {published} published"
                   + ("" if published else " (the previous export, if any, is untouched)"))
        click.get_current_context().exit(EXIT_INCOMPLETE)


def _artifact_table(result):
    from ..console import table

    m = result.manifest
    rows = []
    for a in m.artifacts:
        p = a.parity
        parity = (f"max|Δ| {p['max_abs_diff']:.1e}" if a.storage_precision == "fp32"
                  else f"top-1 {p['top1_agreement']:.1f}%, max|Δ| {p['max_abs_diff']:.2g}")
        rows.append([a.path, f"{a.storage_precision} / {a.inference_precision}",
                     _size(a.total_size), parity, f"{a.test_accuracy:.2f}% ({a.accuracy_delta:+.2f})"])
    t = table(f"{m.model} from {m.run} → {result.out_dir}/ ({m.exporter} exporter, opset {m.opset}; "
              f"PyTorch test accuracy {m.pytorch['test_accuracy']:.2f}%)",
              ["path", "stored / computed", "size", "parity vs PyTorch", "test accuracy (Δ)"], rows)
    t.columns[0].justify = "left"
    t.columns[0].no_wrap = True
    return t


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
