"""The model-side export hook: a model that has a faster equivalent form for export provides it itself.

Like timm's `reparameterize_model`, which asks each module for its fused form, the export pipeline
asks the model (export/rewrites.rewrite_for_export) and knows no model class:

- `export_rewrites` (class attribute): the names of the rewrites the model offers, in the order it
  applies them; empty (FeatureModel's default) when it has none.
- `export_form(rewrites)`: the model's faster equivalent made with those of the named rewrites it
  applies (a subset of `export_rewrites`), as an `ExportForm`; FeatureModel's default is the model
  itself with none applied.

The form must compute the model's logits up to float rounding: the pipeline exports it and proves
every artifact against the model as trained, so a wrong form is never published. The names applied
go into the manifest (`rewrites`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ExportForm:
    """A module to export in place of a model, and the rewrites that made it from the model."""

    module: nn.Module
    applied: tuple[str, ...]  # rewrite names, in the order applied; () when `module` is the model itself
