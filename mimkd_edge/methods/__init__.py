"""Distillation methods (KD, FitNets, AT, VID, CRD, MIMKD) behind one registry."""

from .registry import (DistillMethod, MethodContext, MethodOutput, create_method, list_methods, method_class,
                       register_method)

__all__ = ["DistillMethod", "MethodContext", "MethodOutput", "create_method", "list_methods", "method_class",
           "register_method"]
