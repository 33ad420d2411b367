"""Imports every model module so that their @register_model decorators run."""

from . import conv4, imagenet, mobilenet, resnet, shufflenet, vgg, wrn  # noqa: F401
