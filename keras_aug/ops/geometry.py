"""Geometric ops: exact index ops (flip, crop) and one-pass warps from per-sample 3x3 matrices."""
from __future__ import annotations

import tensorflow as tf


def flip(images: tf.Tensor, horizontal: tf.Tensor, vertical: tf.Tensor) -> tf.Tensor:
    """Per-sample flips; `horizontal`/`vertical` are bool (B,). Exact, no interpolation."""
    images = tf.where(horizontal[:, None, None, None], tf.reverse(images, axis=[2]), images)
    return tf.where(vertical[:, None, None, None], tf.reverse(images, axis=[1]), images)
