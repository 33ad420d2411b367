"""Model zoo behind one registry and one feature API."""

from .features import FeatureInfo, FeatureModel, Features, map_shapes
from .registry import create_model, is_model, list_models, model_entry, register_model

__all__ = ["FeatureInfo", "FeatureModel", "Features", "map_shapes", "create_model", "is_model",
           "list_models", "model_entry", "register_model"]
