"""Model zoo behind one registry and one feature API."""

from .cost import count_macs, count_params
from .features import FeatureInfo, FeatureModel, Features, map_shapes
from .registry import create_model, is_model, list_models, model_entry, register_model

__all__ = ["count_macs", "count_params", "FeatureInfo", "FeatureModel", "Features", "map_shapes", "create_model",
           "is_model", "list_models", "model_entry", "register_model"]
