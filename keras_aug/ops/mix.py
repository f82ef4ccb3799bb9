"""Mixing ops: blend or paste each image with a partner from the same batch, and mix labels by the
true proportion of each image in the result.

A mix is described per sample by `partner` (int32 `(B,)`, the index of the image it is mixed
with) and an own-weight: a number per sample (MixUp), or a per-pixel map (CutMix, PuzzleMix).
The label weight is always the mean of the per-pixel own-weight, so soft labels match the images.
"""
from __future__ import annotations

import tensorflow as tf

from keras_aug.ops.erase import box_area, box_edges


def cyclic_partner(uniform: tf.Tensor) -> tf.Tensor:
    """A random permutation with a single cycle, from `(B,)` uniform draws.

    Sorting the draws gives a random order `o`; image `o[k]` is mixed with `o[k + 1]` (cyclically).
    Unlike a plain random permutation, no image is its own partner (for B > 1), so no sample is
    wasted on mixing with itself, and every image is used exactly once as a partner.
    """
    order = tf.argsort(uniform, stable=True)
    # partner[order[k]] = order[k + 1]: one scatter instead of a second sort for the inverse
    return tf.scatter_nd(order[:, None], tf.roll(order, shift=-1, axis=0), tf.shape(order))


def blend(images: tf.Tensor, partner: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """`weight * images + (1 - weight) * images[partner]`; `weight` is `(B,)` or `(B, H, W)`."""
    weight = tf.cast(weight, images.dtype)
    weight = tf.reshape(weight, tf.concat([tf.shape(weight), [1] * (4 - weight.shape.rank)], 0))
    return weight * images + (1 - weight) * tf.gather(images, partner)


def paste(images: tf.Tensor, partner: tf.Tensor, region: tf.Tensor) -> tf.Tensor:
    """Copy `images[partner]` into the boolean `region` `(B, H, W)`; exact (no arithmetic), so it
    also suits segmentation masks."""
    return tf.where(region[..., None], tf.gather(images, partner), images)


def mix_labels(labels: tf.Tensor, partner: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """Soft labels `weight * labels + (1 - weight) * labels[partner]`; `labels` `(B, K)` float."""
    weight = tf.cast(weight, labels.dtype)[:, None]
    return weight * labels + (1 - weight) * tf.gather(labels, partner)


def cutmix_boxes(
    lam: tf.Tensor, center_y: tf.Tensor, center_x: tf.Tensor, image_height, image_width
) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix boxes (Yun et al. 2019, as timm's `rand_bbox`) and the exact own-weight.

    The box has sides `sqrt(1 - lam)` times the image sides, centred at `(center_y, center_x)`
    (pixels, `(B,)`), clipped to the image. Returns integer edges `(B, 4)` and the own-weight
    `1 - pasted area / image area` `(B,)`: after clipping this differs from `lam`, and it is the
    weight the labels must use.
    """
    h = tf.cast(image_height, tf.float32)
    w = tf.cast(image_width, tf.float32)
    cut = tf.sqrt(1.0 - tf.cast(lam, tf.float32))
    edges = box_edges(center_y, center_x, h * cut, w * cut, image_height, image_width)
    weight = 1.0 - tf.cast(box_area(edges), tf.float32) / (h * w)
    return edges, weight

