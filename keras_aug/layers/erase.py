"""Erasing layers: RandomErasing (timm semantics), RandomCutout (square) and GridMask.

All three build their masks by comparing coordinate grids with per-sample boxes (see
`keras_aug.ops.erase`), so a whole batch is erased in a few fused, XLA-compiled ops.
Segmentation masks, labels and bounding boxes pass through unchanged (erasing moves no pixels);
as in Keras, a box over an erased region is not shrunk or dropped.
"""
from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.core.boxes import KeepsBoxes
from keras_aug.core.live import Live
from keras_aug.core.validation import check_choice, check_positive_range, check_range
from keras_aug.ops import erase as ops

__all__ = ["RandomErasing", "RandomCutout", "GridMask"]

FILL_MODES = ("constant", "random", "pixel")


def _check_fill_value(fill_value) -> float | tuple[float, ...]:
    """A number, or one number per channel."""
    if isinstance(fill_value, numbers.Real) and not isinstance(fill_value, bool):
        return float(fill_value)
    if (
        isinstance(fill_value, (tuple, list))
        and len(fill_value) in (1, 3, 4)
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in fill_value)
    ):
        return tuple(float(v) for v in fill_value)
    raise ValueError(
        f"fill_value must be a number or one number per channel (1, 3 or 4 values), got {fill_value!r}"
    )


def _constant_fill(fill_value, channels) -> tf.Tensor:
    """`fill_value` as a tensor broadcastable to `(B, H, W, C)` (a scalar or `(C,)`)."""
    value = tf.constant(fill_value, tf.float32)
    if value.shape.rank == 1 and value.shape[0] not in (1, channels):
        raise ValueError(
            f"fill_value has {value.shape[0]} values but the images have {channels} channels"
        )
    return value


def _sample_fill(layer, draws, images, colour_shape) -> tf.Tensor:
    """The fill of one augmentation call: per-pixel noise `(B, H, W, C)` for `mode="pixel"`, random
    colours `colour_shape + (C,)` for `mode="random"`, else the constant `fill_value`."""
    low, high = layer.value_range
    channels = images.shape[-1]
    if layer.mode == "pixel":
        return draws.uniform(tf.shape(images), low, high)
    if layer.mode == "random":
        return draws.uniform([*colour_shape, channels], low, high)
    return _constant_fill(layer.fill_value, channels)


def _check_cutout_size(name: str, value) -> tuple[float, float]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
        value = (float(value), float(value))
    return check_range(name, value, low=0.0, high=1.0)


def _check_hole_ratio(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomErasing(KeepsBoxes, AugmentationLayer):
    """Erase 1..N random boxes per image (Zhong et al. 2020), with timm's sampling.

    For each image a box count is drawn in `[min_boxes, max_boxes]`; each box gets a target area
    `uniform(scale) * H * W / count` and an aspect ratio log-uniform in `ratio`; a box that would
    not fit inside the image is redrawn (up to `attempts` times, all drawn at once), else skipped,
    exactly as timm's `RandomErasing`. Boxes lie fully inside the image.

    Args:
        scale: `(min, max)` fraction of the image area erased per image (split over its boxes).
        ratio: `(min, max)` aspect ratio (height / width) range, sampled log-uniformly.
        mode: `"constant"` fills with `fill_value`; `"random"` fills each box with one random
            colour; `"pixel"` fills each pixel with noise. timm draws its random values from
            N(0, 1) in normalized space; here they are uniform over `value_range`, so erased
            images stay in range.
        fill_value: a number or one number per channel, used by `mode="constant"`.
        max_boxes: largest number of boxes per image (timm's `max_count`).
        min_boxes: smallest number of boxes per image (timm's `min_count`).
        attempts: redraws for a box that does not fit (timm: 10).
        p, value_range, seed: see `AugmentationLayer` (timm's `probability` is `p`).

    Example:
        >>> layer = keras_aug.layers.RandomErasing(scale=(0.02, 0.33), mode="pixel", seed=0)
        >>> erased = layer(tf.random.uniform([8, 64, 64, 3], 0, 255))
    """

    scale = Live(lambda name, v: check_positive_range(name, v, end="max", low=0.0, high=1.0),
                 identity=0.0)
    ratio = Live(lambda name, v: check_range(name, v, low=1e-6))

    def __init__(
        self,
        scale=(0.02, 1 / 3),
        ratio=(0.3, 1 / 0.3),
        mode: str = "constant",
        fill_value=0.0,
        max_boxes: int = 1,
        min_boxes: int = 1,
        attempts: int = 10,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scale = scale
        self.ratio = ratio
        self.mode = check_choice("mode", mode, FILL_MODES)
        self.fill_value = _check_fill_value(fill_value)
        for name, value, least in (("max_boxes", max_boxes, 1), ("min_boxes", min_boxes, 0),
                                   ("attempts", attempts, 1)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if min_boxes > max_boxes:
            raise ValueError(
                f"min_boxes must be <= max_boxes, got min_boxes={min_boxes}, max_boxes={max_boxes}"
            )
        self.max_boxes, self.min_boxes, self.attempts = int(max_boxes), int(min_boxes), int(attempts)

    def sample_params(self, batch_size, images, draws):
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        n, a = self.max_boxes, self.attempts
        count = draws.integers([batch_size], self.min_boxes, self.max_boxes + 1)
        scale, log_ratio = self.live("scale"), tf.math.log(self.live("ratio"))
        area = draws.uniform([batch_size, n, a], scale[0], scale[1]) * hf * wf
        area = area / tf.cast(tf.maximum(count, 1), tf.float32)[:, None, None]
        aspect = tf.exp(draws.uniform([batch_size, n, a], log_ratio[0], log_ratio[1]))
        bh = tf.round(tf.sqrt(area * aspect))
        bw = tf.round(tf.sqrt(area / aspect))
        fits = (bh < hf) & (bw < wf) & (bh > 0) & (bw > 0)
        first = tf.argmax(tf.cast(fits, tf.int32), axis=-1, output_type=tf.int32)  # (B, N)
        bh = tf.gather(bh, first, batch_dims=2)
        bw = tf.gather(bw, first, batch_dims=2)
        used = tf.reduce_any(fits, axis=-1) & (tf.range(n)[None, :] < count[:, None])
        top = tf.floor(draws.uniform([batch_size, n]) * (hf - bh + 1))
        left = tf.floor(draws.uniform([batch_size, n]) * (wf - bw + 1))
        bh, bw = tf.where(used, bh, 0.0), tf.where(used, bw, 0.0)
        edges = tf.cast(tf.stack([top, left, top + bh, left + bw], axis=-1), tf.int32)
        return {"edges": edges, "fill": _sample_fill(self, draws, images, [batch_size, n])}

    def fold_p(self, params, apply):
        """A sample `p` leaves out gets empty boxes (erases nothing)."""
        return {**params, "edges": tf.where(apply[:, None, None], params["edges"], 0)}

    def augment_images(self, images, params):
        return ops.erase_boxes(images, params["edges"], params["fill"])

    def get_config(self):
        return {
            **super().get_config(), "scale": self.scale, "ratio": self.ratio, "mode": self.mode,
            "fill_value": self.fill_value, "max_boxes": self.max_boxes,
            "min_boxes": self.min_boxes, "attempts": self.attempts,
        }


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomCutout(KeepsBoxes, AugmentationLayer):
    """Cutout (DeVries & Taylor 2017): one square per image, centred anywhere, clipped at borders.

    Args:
        size: side of the square as a fraction of the shorter image side: a number, or a
            `(min, max)` range sampled per image. A square centred near a border is clipped, so
            the erased area varies, as in the paper.
        mode: `"constant"` (`fill_value`), `"random"` (one random colour per image) or
            `"pixel"` (uniform noise over `value_range`).
        fill_value: a number or one number per channel, used by `mode="constant"`.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomCutout(size=0.5, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    size = Live(_check_cutout_size, identity=0.0)

    def __init__(self, size=0.5, mode: str = "constant", fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.mode = check_choice("mode", mode, FILL_MODES)
        self.fill_value = _check_fill_value(fill_value)

    def sample_params(self, batch_size, images, draws):
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
        size = self.live("size")
        side = draws.uniform([batch_size], size[0], size[1]) * tf.minimum(hf, wf)
        params = {
            "center_y": draws.uniform([batch_size], 0.0, hf),
            "center_x": draws.uniform([batch_size], 0.0, wf),
            "side": side,
        }
        fill = _sample_fill(self, draws, images, [batch_size])
        params["fill"] = fill[:, None, None, :] if self.mode == "random" else fill
        return params

    def fold_p(self, params, apply):
        """A sample `p` leaves out gets a square of side 0 (erases nothing)."""
        return {**params, "side": tf.where(apply, params["side"], 0.0)}

    def augment_images(self, images, params):
        return ops.cutout(images, params["center_y"], params["center_x"], params["side"],
                          params["side"], params["fill"])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "mode": self.mode,
                "fill_value": self.fill_value}


@keras.saving.register_keras_serializable(package="keras_aug")
class GridMask(KeepsBoxes, AugmentationLayer):
    """GridMask (Chen et al. 2020): erase a regular grid of square holes, shifted per image.

    Each image draws a grid period `unit` (fraction of the shorter side, from the `unit` range)
    and random offsets; the square holes have side `ratio * unit`, so about `ratio**2` of the
    image is erased. The paper also rotates the grid; this layer does not (chain a rotation if
    wanted).

    Args:
        ratio: side of a hole as a fraction of the grid period, in [0, 1).
        unit: `(min, max)` grid period as a fraction of the shorter image side.
        fill_value: a number or one number per channel.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.GridMask(ratio=0.5, unit=(0.2, 0.5), seed=0)
        >>> out = layer(tf.random.uniform([8, 64, 64, 3], 0, 255))
    """

    ratio = Live(_check_hole_ratio, identity=0.0)
    unit = Live(lambda name, v: check_positive_range(name, v, low=0.0, high=1.0))

    def __init__(self, ratio: float = 0.5, unit=(0.2, 0.5), fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.ratio = ratio
        self.unit = unit
        self.fill_value = _check_fill_value(fill_value)

    def sample_params(self, batch_size, images, draws):
        shape = tf.shape(images)
        side = tf.cast(tf.minimum(shape[1], shape[2]), tf.float32)
        bounds = self.live("unit")
        unit = tf.maximum(tf.round(draws.uniform([batch_size], bounds[0], bounds[1]) * side), 2.0)
        return {
            "unit": unit,
            "hole": tf.round(unit * self.live("ratio")),
            "offset_y": tf.floor(draws.uniform([batch_size]) * unit),
            "offset_x": tf.floor(draws.uniform([batch_size]) * unit),
        }

    def fold_p(self, params, apply):
        """A sample `p` leaves out gets holes of side 0 (erases nothing)."""
        return {**params, "hole": tf.where(apply, params["hole"], 0.0)}

    def augment_images(self, images, params):
        shape = tf.shape(images)
        mask = ops.grid_mask(shape[1], shape[2], params["unit"], params["hole"],
                             params["offset_y"], params["offset_x"])
        fill = _constant_fill(self.fill_value, images.shape[-1])
        return tf.where(mask[..., None], tf.cast(fill, images.dtype), images)

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "unit": self.unit,
                "fill_value": self.fill_value}
