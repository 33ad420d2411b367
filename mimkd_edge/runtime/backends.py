"""The runtimes a Session opens, by name: in a module of their own, which imports nothing, so the CLI
can offer them (as `bench --backend`'s default) without loading numpy or a runtime."""

BACKENDS = ("torch", "onnxruntime", "openvino")
