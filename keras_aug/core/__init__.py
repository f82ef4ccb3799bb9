"""Augmentation engine: base layer, per-sample randomness, input standardization, validation."""
from keras_aug.core.base import IMAGES, LABELS, MASKS, AugmentationLayer
from keras_aug.core.random import Draws

__all__ = ["AugmentationLayer", "Draws", "IMAGES", "LABELS", "MASKS"]
