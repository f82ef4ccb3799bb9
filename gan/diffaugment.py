"""DiffAugment (Zhao et al. 2020) on keras_aug ops: the same kind of differentiable augmentation
applied to real and fake images, for both the discriminator and the generator update, so the
discriminator cannot memorise a tiny training set and the generator is not taught the
augmentation.

Written from the paper's description over keras_aug's batched ops (colour, translation, cutout):
per-sample parameters, gradients flow to the images. Each op family is applied to a sample with
probability `p` and is the identity (factor 1, shift 0, empty cutout) otherwise, which is how the
ADA-style controller in `gan.models` turns augmentation strength up and down.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from keras_aug.core.random import Draws

POLICY_OPS = ("color", "translation", "cutout")
DEFAULT_POLICY = POLICY_OPS
TRANSLATION_RATIO = 0.125  # of the image size, as in the paper
CUTOUT_RATIO = 0.5  # side of the erased square, as a fraction of the image side
UNIT_RANGE = (-1.0, 1.0)  # the GAN works on images in [-1, 1]


def check_policy(policy) -> tuple[str, ...]:
    """A policy as a tuple of op names; accepts "color,translation" strings and sequences."""
    if policy is None:
        return ()
    if isinstance(policy, str):
        policy = [p.strip() for p in policy.split(",") if p.strip()]
    if not isinstance(policy, Sequence):
        raise ValueError(f"policy must be a sequence of {POLICY_OPS} or a comma string, got {policy!r}")
    policy = tuple(policy)
    unknown = [p for p in policy if p not in POLICY_OPS]
    if unknown:
        raise ValueError(f"policy has unknown op(s) {unknown}; expected names from {POLICY_OPS}")
    return policy


def diff_augment(
    images: tf.Tensor,
    key: tf.Tensor,
    policy: Sequence[str] = DEFAULT_POLICY,
    p: float | tf.Tensor = 1.0,
    value_range: tuple[float, float] = UNIT_RANGE,
) -> tf.Tensor:
    """Augment a float batch (B, H, W, C) in `value_range`, differentiably, from a stateless key.

    Args:
        images: float32 images.
        key: int64 (2,) stateless key; the same key gives the same augmentation.
        policy: op families to use, from "color", "translation", "cutout".
        p: per-sample probability of applying each family (a float or a scalar tensor).
        value_range: the images' range (the GAN uses [-1, 1]).

    Example:
        >>> images = tf.random.uniform([4, 32, 32, 1], -1.0, 1.0)
        >>> key = tf.constant([0, 7], tf.int64)
        >>> out = diff_augment(images, key, policy=("color", "translation", "cutout"))
        >>> bool(tf.reduce_all(out == diff_augment(images, key)))   # same key, same draw
        True
    """
    if not policy:
        return images
    from keras_aug.ops import color, erase, geometry

    draws = Draws(key)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    p = tf.cast(p, tf.float32)

    def factor(apply, low, high):
        return tf.where(apply, draws.uniform([batch], low, high), tf.ones([batch]))

    low = value_range[0]
    if "color" in policy:
        apply = draws.bernoulli([batch], p)
        images = color.brightness(images, factor(apply, 0.5, 1.5), value_range)
        images = color.saturation(images, factor(apply, 0.0, 2.0), value_range)
        images = color.contrast(images, factor(apply, 0.5, 1.5), value_range)
    if "translation" in policy:
        apply = draws.bernoulli([batch], p)
        max_y = tf.cast(tf.cast(height, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
        max_x = tf.cast(tf.cast(width, tf.float32) * TRANSLATION_RATIO + 0.5, tf.int32)
        dy = draws.integers([batch], -max_y, max_y + 1)
        dx = draws.integers([batch], -max_x, max_x + 1)
        zero = tf.zeros([batch], tf.int32)
        dy = tf.cast(tf.where(apply, dy, zero), tf.float32)
        dx = tf.cast(tf.where(apply, dx, zero), tf.float32)
        # Integer shifts: nearest sampling is exact, gradients go straight to the moved pixels.
        images = geometry.warp(
            images, geometry.translation_matrix(dx, dy), interpolation="nearest",
            fill_mode="constant", fill_value=low,
        )
    if "cutout" in policy:
        apply = draws.bernoulli([batch], p)
        cut_h = tf.cast(tf.cast(height, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
        cut_w = tf.cast(tf.cast(width, tf.float32) * CUTOUT_RATIO + 0.5, tf.int32)
        center_y = draws.integers([batch], 0, height)
        center_x = draws.integers([batch], 0, width)
        zero = tf.zeros([batch], tf.int32)
        size_h = tf.where(apply, tf.fill([batch], cut_h), zero)
        size_w = tf.where(apply, tf.fill([batch], cut_w), zero)
        images = erase.cutout(
            images, tf.cast(center_y, tf.float32), tf.cast(center_x, tf.float32),
            tf.cast(size_h, tf.float32), tf.cast(size_w, tf.float32), fill_value=low,
        )
    return images

