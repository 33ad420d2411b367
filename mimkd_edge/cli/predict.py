"""`mimkd-edge predict`: classify image files with an exported artifact, from the artifact alone."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..runtime.backends import ARTIFACT_BACKENDS, CHOICE_PRECISIONS, PREDICT_THREADS, PREDICT_TOP_K
from . import main


@main.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=PREDICT_TOP_K, show_default=True, type=click.IntRange(min=1),
              help="Classes to list per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (for machines).")
@click.option("--threads", default=PREDICT_THREADS, show_default=True, type=click.IntRange(min=1),
              help="Inference threads.")
@click.option("--backend", type=click.Choice(ARTIFACT_BACKENDS),
              help="Runtime [default: onnxruntime for .onnx, openvino for .xml, ncnn for .param, executorch for .pte; "
                   "for a RUN, the benchmark's choice].")
@click.option("--precision", type=click.Choice(CHOICE_PRECISIONS),
              help="For a RUN: the chosen artifact of this precision [default: the fastest chosen].")
def predict(artifact, images, top_k, as_json, threads, backend, precision):
    """Classify IMAGES (files or folders of images) with ARTIFACT (.onnx, .xml, .param or .pte), as trained.

    The artifact carries its input size, colour mode, normalisation and class names (an ncnn graph
    and a .pte program in the .json beside them); no run directory is needed, and torch need not be
    installed (numpy, Pillow and the runtime suffice; the ExecuTorch runtime itself needs torch).
    ARTIFACT may also be a benchmarked RUN directory: then the artifact and backend its benchmark
    measured fastest at batch 1 on the CPU it ran on, within 0.5 points of FP32 accuracy (`choices`
    in its bench file).
    """
    from ..console import say
    from ..errors import UserError
    from ..imaging import image_files
    from ..runtime.predict import deployed_artifact, open_artifact, timed_predict

    compute, source = "f32", artifact
    if artifact.is_dir():
        source, chosen, choice = deployed_artifact(artifact, precision)  # its bytes, checked: what runs
        artifact = source.path
        compute = choice.get("compute", "f32") if backend in (None, chosen) else "f32"  # a forced backend: as exported
        backend = backend or chosen
        if not as_json:
            say(f"{artifact}: {choice['why']}")
    elif precision is not None:
        raise UserError("--precision: only with a RUN directory (an artifact file has one precision)")
    files = image_files(images)
    session, info = open_artifact(source, threads=threads, backend=backend, compute=compute)
    predictions, rate = timed_predict(session, info, files, top_k=top_k)
    if as_json:
        click.echo(json.dumps({
            "artifact": str(artifact), "backend": session.backend, "inference_precision": session.inference_precision,
            "recipe": info.recipe_name,
            "recipe_sha256": info.recipe_sha256, "images": rate.images, "seconds": round(rate.seconds, 4),
            "predictions": [{"path": p.path, "top": [{"label": c, "probability": q} for c, q in p.top]}
                            for p in predictions]}, indent=2))
        return
    _print(predictions, rate, session.backend, threads)


def _print(predictions, rate, backend: str, threads: int) -> None:
    from ..console import console, say, table

    rows = [[p.path, ", ".join(f"{c} {q:.1%}" for c, q in p.top)] for p in predictions]
    t = table(f"{len(predictions)} image(s)", ["image", "top classes (probability)"], rows)
    t.columns[0].justify, t.columns[0].overflow = "left", "fold"  # a path is read whole
    console.print(t)
    if rate.images > 1:
        say(f"{rate.images} images in {rate.seconds:.2f} s: {rate.images_per_s:,.0f} images/s end to end "
            f"(decode + normalise + {backend}, {threads} thread(s))")
