"""The runtimes a Session opens, by name, and what each needs: in a module of their own, which imports
nothing, so the CLI can offer them (as `bench --backend`'s default) without loading numpy or a runtime.

ncnn and ExecuTorch are optional extras (`pip install -e '.[ncnn]'`, `'.[executorch]'`): nothing imports
them until an artifact of theirs is exported or opened."""

BACKENDS = ("torch", "onnxruntime", "openvino", "ncnn", "executorch")
ARTIFACT_BACKENDS = BACKENDS[1:]  # the runtimes of exported artifacts (what a deployment choice may name)

# manifest `format` → the runtime that opens it
BACKEND_OF_FORMAT = {"onnx": "onnxruntime", "openvino-ir": "openvino", "ncnn": "ncnn", "executorch-pte": "executorch"}
FORMAT_OF_BACKEND = {backend: fmt for fmt, backend in BACKEND_OF_FORMAT.items()}

# runtime → the Python module it is imported as (what `bench` checks before opening one of its artifacts)
RUNTIME_MODULE = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "ncnn": "ncnn",
                  "executorch": "executorch"}

# what a deployment choice's kernels compute in, fastest-first within a run's bench (runtime/choice.py)
CHOICE_PRECISIONS = ("fp32", "bf16", "int8")

# `predict`'s defaults (runtime/predict.py), here so the CLI offers them without loading numpy
PREDICT_TOP_K = 5  # classes listed per image
PREDICT_THREADS = 1  # inference threads: batch-1 edge deployment, as the benchmark's default
