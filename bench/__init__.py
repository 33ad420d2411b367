"""The studies behind bench/results/: each a script run from the repository root as `python -m bench.NAME`.

They are clients of the library's public API (the training step and the method's set-up from
mimkd_edge.engine.step, artifacts from mimkd_edge.export, records from mimkd_edge.rundir) and import one
another as modules of this package; the reporting only one study needs lives next to that study here.
"""
