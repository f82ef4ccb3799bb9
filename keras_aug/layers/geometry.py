"""Geometric augmentation layers."""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.core.validation import check_choice
from keras_aug.ops import geometry as ops

__all__ = ["RandomFlip"]

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomFlip(AugmentationLayer):
    """Flip each image with probability 0.5 per axis named by `mode`.

    Unlike Keras' RandomFlip, `"horizontal_and_vertical"` flips each axis independently, so an image
    can be flipped on one axis only. Flips are exact index reversals (no interpolation).

    Args:
        mode: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"`.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomFlip("horizontal", seed=0)
        >>> flipped = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, mode: str = "horizontal", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, FLIP_MODES)

    def sample_params(self, batch_size, images, draws):
        no = tf.zeros([batch_size], tf.bool)
        h = draws.bernoulli([batch_size], 0.5) if "horizontal" in self.mode else no
        v = draws.bernoulli([batch_size], 0.5) if "vertical" in self.mode else no
        return {"horizontal": h, "vertical": v}

    def augment_images(self, images, params):
        return ops.flip(images, params["horizontal"], params["vertical"])

    augment_segmentation_masks = augment_images

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
