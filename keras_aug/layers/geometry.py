"""Geometric augmentation layers.

Factor conventions follow Keras so that its layers can be swapped for these:
rotation factors are fractions of a full turn (0.1 -> up to +/-36 degrees), translation factors
fractions of the height/width, zoom factors Keras' (positive zooms out), a single number `f`
means `(-f, f)`. Unlike Keras, an inverted `(max, min)` range is an error instead of being
silently re-sorted, every sample draws its own parameters, and all affine parts of a layer are one
3x3 matrix per sample and ONE resampling pass (`keras_aug.ops.geometry.warp`, XLA-compiled).
Segmentation masks (B, H, W, 1) or (B, H, W) are warped with nearest interpolation and filled
with 0 in `"constant"` mode. Bounding boxes (`bounding_box_format=`, see `keras_aug.core.boxes`)
follow the same parameters: flips and crops exactly, warps by mapping the four corners with the
image's matrix and taking the enclosing box (`keras_aug.ops.boxes`).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.core.base import IMAGES, MASKS, _restore_dtype, _standardize
from keras_aug.core.boxes import BOXES, augment_bounding_boxes, check_layer_takes_boxes
from keras_aug.core.live import Live
from keras_aug.core.validation import (
    check_choice,
    check_images,
    check_positive_range,
    check_range,
)
from keras_aug.ops import boxes as box_ops
from keras_aug.ops import geometry as ops

__all__ = [
    "CenterCrop",
    "RandomAffine",
    "RandomCrop",
    "RandomFlip",
    "RandomPerspective",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomShear",
    "RandomTranslation",
    "RandomZoom",
]

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
        # An axis the mode does not name is skipped, not flipped with an all-False mask.
        return ops.flip(images, params["horizontal"] if "horizontal" in self.mode else None,
                        params["vertical"] if "vertical" in self.mode else None)

    augment_segmentation_masks = augment_images

    def augment_bounding_boxes(self, boxes, params, height, width):
        horizontal = params["horizontal"] if "horizontal" in self.mode else None
        vertical = params["vertical"] if "vertical" in self.mode else None
        return box_ops.flip_boxes(boxes, horizontal, vertical, height, width)

    # -- geometry protocol (keras_aug.layers.pipeline fuses these into one warp)
    geometric = True
    interpolates = False

    def geometry_matrix(self, params, height, width):
        return ops.flip_matrix(params["horizontal"], params["vertical"], height, width)

    def output_size(self, height, width):
        return height, width

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


# --------------------------------------------------------------------------- warps
def _size(images: tf.Tensor, axis: int):
    """Static size of an axis when known (constant-folds the matrices), else a scalar tensor."""
    static = images.shape[axis]
    return static if static is not None else tf.shape(images)[axis]


def _warp_masks(masks: tf.Tensor, matrices: tf.Tensor, fill_mode: str) -> tf.Tensor:
    """Masks follow the images' geometry with nearest sampling (labels never blend)."""
    if masks.shape.rank == 3:
        return ops.warp(masks[..., None], matrices, "nearest", fill_mode, 0)[..., 0]
    return ops.warp(masks, matrices, "nearest", fill_mode, 0)


class _WarpLayer(AugmentationLayer):
    """Shared interpolation/fill arguments and the one-warp apply step of matrix layers."""

    def __init__(self, interpolation: str = "bilinear", fill_mode: str = "reflect",
                 fill_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.interpolation = check_choice("interpolation", interpolation, ops.INTERPOLATIONS)
        self.fill_mode = check_choice("fill_mode", fill_mode, ops.FILL_MODES)
        if isinstance(fill_value, bool) or not isinstance(fill_value, (int, float)):
            raise ValueError(
                f"fill_value must be a number (in value_range units), got {fill_value!r}")
        self.fill_value = float(fill_value)

    def augment_images(self, images, params):
        return ops.warp(images, params["matrix"], self.interpolation, self.fill_mode,
                        self.fill_value)

    def augment_segmentation_masks(self, masks, params):
        return _warp_masks(masks, params["matrix"], self.fill_mode)

    def augment_bounding_boxes(self, boxes, params, height, width):
        return box_ops.warp_boxes(boxes, params["matrix"])

    # -- geometry protocol (keras_aug.layers.pipeline fuses these into one warp)
    geometric = True
    interpolates = True

    def geometry_matrix(self, params, height, width):
        return params["matrix"]

    def output_size(self, height, width):
        return height, width

    def _warp_config(self) -> dict:
        return {"interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomAffine(_WarpLayer):
    """Random rotation, translation, zoom and shear per sample, as ONE matrix and ONE warp.

    Each argument is a number `f` (range `(-f, f)`) or a `(min, max)` pair; 0 disables that part
    (no random draw, no cost). The content is zoomed, then sheared, then rotated, then translated
    (`ops.compose(zoom, shear, rotation, translation)`), all about the image centre, and resampled
    once, so a chain of four transforms costs one bilinear pass instead of four (Keras' layers
    chained resample four times and blur four times).

    Args:
        rotation: fraction of a full turn, as Keras' RandomRotation (0.1 -> up to +/-36 degrees;
            positive turns counter-clockwise).
        translate_x, translate_y: fraction of the width / height, as Keras' RandomTranslation
            (positive moves the content right / down). Each within [-1, 1].
        zoom_y, zoom_x: Keras' RandomZoom factors (height, width): positive zooms OUT (the content
            shrinks by `1 / (1 + f)`), negative zooms in; each > -1. `zoom_x=None` reuses the
            vertical draw (aspect ratio kept).
        shear_x, shear_y: shear factors about the centre (`x_in = x + s * (y - cy)`), PIL/
            AutoAugment convention; `tan(angle)` for a shear angle.
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: `"reflect"` (Keras' default), `"constant"`, `"nearest"` or `"wrap"`.
        fill_value: value for `"constant"`, in `value_range` units.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomAffine(rotation=0.05, translate_x=0.1, translate_y=0.1,
        ...                                       zoom_y=0.1, shear_x=0.1, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    rotation = Live(lambda name, v: check_range(name, v, symmetric=True), identity=0.0)
    translate_x = Live(lambda name, v: check_range(name, v, symmetric=True, low=-1, high=1),
                       identity=0.0)
    translate_y = Live(lambda name, v: check_range(name, v, symmetric=True, low=-1, high=1),
                       identity=0.0)
    zoom_y = Live(lambda name, v: _check_zoom(name, v), identity=0.0)
    zoom_x = Live(lambda name, v: _check_zoom(name, v), identity=0.0, optional=True,
                  shape=(2,))
    _zoom_x_tied = Live(lambda name, v: float(v))  # zoom_x=None reuses the zoom_y draw
    shear_x = Live(lambda name, v: check_range(name, v, symmetric=True), identity=0.0)
    shear_y = Live(lambda name, v: check_range(name, v, symmetric=True), identity=0.0)

    def __init__(self, rotation=0.0, translate_x=0.0, translate_y=0.0, zoom_y=0.0, zoom_x=None,
                 shear_x=0.0, shear_y=0.0, interpolation: str = "bilinear",
                 fill_mode: str = "reflect", fill_value: float = 0.0, **kwargs):
        super().__init__(interpolation, fill_mode, fill_value, **kwargs)
        self.rotation = rotation
        self.translate_x = translate_x
        self.translate_y = translate_y
        self.zoom_y = zoom_y
        self.zoom_x = zoom_x
        self.shear_x = shear_x
        self.shear_y = shear_y

    def _check_live(self, name, value):
        if name == "zoom_x":
            self._zoom_x_tied = value is None

    def sample_params(self, batch_size, images, draws):
        # Every part is always drawn (a few (B, 3, 3) products): ranges are live, so a part that
        # is 0 now may be set later; the warp is one pass either way.
        height, width = _size(images, 1), _size(images, 2)

        def draw(name):
            bounds = self.live(name)
            return draws.uniform([batch_size], bounds[0], bounds[1])

        zy = draw("zoom_y")
        zx = tf.where(self.live("_zoom_x_tied") > 0.5, zy, draw("zoom_x"))
        sx, sy = draw("shear_x"), draw("shear_y")
        angle = draw("rotation") * (2.0 * math.pi)
        tx = draw("translate_x") * tf.cast(width, tf.float32)
        ty = draw("translate_y") * tf.cast(height, tf.float32)
        matrix = ops.compose(
            ops.zoom_matrix(1.0 / (1.0 + zx), 1.0 / (1.0 + zy), height, width),
            ops.shear_matrix(sx, sy, height, width),
            ops.rotation_matrix(angle, height, width),
            ops.translation_matrix(tx, ty),
        )
        return {"matrix": matrix}

    def get_config(self):
        return {**super().get_config(), **self._warp_config(), "rotation": self.rotation,
                "translate_x": self.translate_x, "translate_y": self.translate_y,
                "zoom_y": self.zoom_y, "zoom_x": self.zoom_x, "shear_x": self.shear_x,
                "shear_y": self.shear_y}


def _check_zoom(name: str, value) -> tuple[float, float]:
    bounds = check_range(name, value, symmetric=True)
    if bounds[0] <= -1.0:
        raise ValueError(
            f"{name} must be > -1 (a factor f zooms by 1 / (1 + f); -1 would zoom in infinitely), "
            f"got {value!r}")
    return bounds


def _alias(target: str, zoom: bool = False, **bounds) -> property:
    """A preset's Keras-named attribute, read and assigned through RandomAffine's live one."""

    def get(layer):
        return getattr(layer, target)

    def set_(layer, value):
        name = next(k for k, v in type(layer).__dict__.items() if v is prop)
        if not (zoom and value is None):
            value = _named(name, value, zoom=zoom, **bounds)
        setattr(layer, target, value)

    prop = property(get, set_, doc=f"Alias of RandomAffine's `{target}` (live).")
    return prop


class _AffinePreset(RandomAffine):
    """A Keras-named subset of RandomAffine; its config holds only its own arguments."""

    def _preset_config(self, **own) -> dict:
        return {**AugmentationLayer.get_config(self), **self._warp_config(), **own}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomRotation(_AffinePreset):
    """Rotate each image about its centre by its own random angle (a preset of RandomAffine).

    Args:
        factor: fraction of a full turn as in Keras: `0.1` -> angles in [-36, 36] degrees, or a
            `(min, max)` pair such as `(-0.05, 0.1)`. Positive turns counter-clockwise.
        interpolation, fill_mode (default `"reflect"` as Keras), fill_value: see RandomAffine.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomRotation(0.1, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, factor, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 **kwargs):
        super().__init__(rotation=_named("factor", factor), interpolation=interpolation,
                         fill_mode=fill_mode, fill_value=fill_value, **kwargs)

    factor = _alias("rotation")

    def get_config(self):
        return self._preset_config(factor=self.rotation)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomTranslation(_AffinePreset):
    """Shift each image by its own random fraction of height and width (a preset of RandomAffine).

    Args:
        height_factor: fraction of the height, `f` -> [-f, f] or `(min, max)`; positive moves the
            content down. Within [-1, 1].
        width_factor: fraction of the width; positive moves the content right.
        interpolation, fill_mode (default `"reflect"` as Keras), fill_value: see RandomAffine.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomTranslation(0.1, 0.1, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, height_factor, width_factor, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, **kwargs):
        super().__init__(translate_y=_named("height_factor", height_factor, low=-1, high=1),
                         translate_x=_named("width_factor", width_factor, low=-1, high=1),
                         interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value,
                         **kwargs)

    height_factor = _alias("translate_y", low=-1, high=1)
    width_factor = _alias("translate_x", low=-1, high=1)

    def get_config(self):
        return self._preset_config(height_factor=self.translate_y, width_factor=self.translate_x)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomZoom(_AffinePreset):
    """Zoom each image about its centre by its own random factor (a preset of RandomAffine).

    Args:
        height_factor: Keras' convention: `f` -> [-f, f], positive zooms OUT (content shrinks by
            `1 / (1 + f)`), negative zooms in; each bound > -1.
        width_factor: the same for the width; `None` (default) reuses the height draw so the aspect
            ratio is kept.
        interpolation, fill_mode (default `"reflect"` as Keras), fill_value: see RandomAffine.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomZoom(0.2, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, height_factor, width_factor=None, interpolation="bilinear",
                 fill_mode="reflect", fill_value=0.0, **kwargs):
        super().__init__(zoom_y=_named("height_factor", height_factor, zoom=True),
                         zoom_x=None if width_factor is None
                         else _named("width_factor", width_factor, zoom=True),
                         interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value,
                         **kwargs)

    height_factor = _alias("zoom_y", zoom=True)
    width_factor = _alias("zoom_x", zoom=True)

    def get_config(self):
        return self._preset_config(height_factor=self.zoom_y, width_factor=self.zoom_x)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomShear(_AffinePreset):
    """Shear each image about its centre by its own random factors (a preset of RandomAffine).

    Args:
        x_factor: horizontal shear factor, `f` -> [-f, f] or `(min, max)`: `x_in = x + s (y - cy)`
            (Keras' RandomShear uses the same matrix about the top-left corner instead).
        y_factor: vertical shear factor: `y_in = y + s (x - cx)`.
        interpolation, fill_mode (default `"reflect"` as Keras), fill_value: see RandomAffine.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomShear(x_factor=0.2, y_factor=0.2, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, **kwargs):
        super().__init__(shear_x=_named("x_factor", x_factor),
                         shear_y=_named("y_factor", y_factor),
                         interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value,
                         **kwargs)

    x_factor = _alias("shear_x")
    y_factor = _alias("shear_y")

    def get_config(self):
        return self._preset_config(x_factor=self.shear_x, y_factor=self.shear_y)


def _named(name: str, value, zoom: bool = False, **bounds):
    """Validate a preset's argument under its own (Keras) name, so errors name what users typed."""
    if zoom:
        return _check_zoom(name, value)
    return check_range(name, value, symmetric=True, **bounds)


def _check_distortion(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomPerspective(_WarpLayer):
    """Random perspective distortion per sample: each corner moves inward by its own amount.

    As torchvision's RandomPerspective: every corner moves toward the inside by a uniform random
    fraction in `[0, scale]` of half the width / height (independently in x and y), and the
    homography that maps the corners there is applied in one warp. Unlike Keras (whose
    `factor=1.0` distorts only half the images), `p=1.0` distorts every image.

    Args:
        scale: distortion strength in [0, 1] (torchvision's `distortion_scale`; 0 = identity).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: `"constant"` by default (as Keras/torchvision), or reflect/nearest/wrap.
        fill_value: value for `"constant"`, in `value_range` units.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomPerspective(scale=0.3, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    scale = Live(_check_distortion, identity=0.0)

    def __init__(self, scale: float = 0.5, interpolation="bilinear", fill_mode="constant",
                 fill_value=0.0, **kwargs):
        super().__init__(interpolation, fill_mode, fill_value, **kwargs)
        self.scale = scale

    def sample_params(self, batch_size, images, draws):
        height, width = _size(images, 1), _size(images, 2)
        w1 = tf.cast(width, tf.float32) - 1.0
        h1 = tf.cast(height, tf.float32) - 1.0
        corners = tf.stack([tf.stack([0.0, 0.0]), tf.stack([w1, 0.0]), tf.stack([w1, h1]),
                            tf.stack([0.0, h1])])  # (4, 2) x, y
        half = tf.stack([tf.cast(width, tf.float32), tf.cast(height, tf.float32)]) / 2.0
        inward = tf.constant([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
        shift = draws.uniform([batch_size, 4, 2], 0.0, self.live("scale")) * half * inward
        start = tf.broadcast_to(corners, [batch_size, 4, 2])
        return {"matrix": ops.perspective_matrix(start, start + shift)}

    def get_config(self):
        return {**super().get_config(), **self._warp_config(), "scale": self.scale}


# --------------------------------------------------------------------------- crops
def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (pixels), got {value!r}")
    return value


class _CropLayer(AugmentationLayer):
    """Crops change the image size, so outside training they still crop, deterministically.

    A model built with a crop layer sees the same size in `fit` and `predict`: training draws
    random boxes; inference (and the samples that `p` leaves out) use the deterministic box of
    `_default_box`. `p` is therefore handled here, not by the base class, which would blend
    images of two sizes.
    """

    applies_p = False  # samples left out by p get the default box (same size), not the input
    # strength scales p: at 0 every sample gets the inference crop (a shrunken random range
    # would not converge to it)
    strength_scales_p = True

    def __init__(self, height: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.height = _check_size("height", height)
        self.width = _check_size("width", width)

    _inference_interpolation = "bilinear"

    # -- subclass hooks
    def _random_boxes(self, batch_size, h_in, w_in, draws):
        raise NotImplementedError

    def _default_boxes(self, batch_size, h_in, w_in):
        raise NotImplementedError

    def _crop(self, images, boxes, interpolation):
        raise NotImplementedError

    # -- engine glue
    def call(self, inputs, labels=None, training=None):
        if labels is not None:
            inputs = (inputs, labels)
        data, restore = _standardize(inputs)
        check_images(data[IMAGES], self.channels)  # also on the inference path
        if BOXES in data:
            check_layer_takes_boxes(self)
        self._check_image_size(data[IMAGES])
        if training is None:
            training = self._is_pipeline_call()
        if isinstance(training, bool):
            if training:
                return super().call(inputs, training=True)
            return restore(self._deterministic(data))
        return tf.cond(tf.cast(training, tf.bool),
                       lambda: super(_CropLayer, self).call(inputs, training=True),
                       lambda: restore(self._deterministic(data)))

    def _check_image_size(self, images):
        h, w = images.shape[-3], images.shape[-2]
        if (h is not None and h < self.height) or (w is not None and w < self.width):
            raise ValueError(
                f"{type(self).__name__}: crop height={self.height}, width={self.width} is larger "
                f"than the images ({h}x{w}); pass a crop size at most the image size")

    def _deterministic(self, data: dict) -> dict:
        out = dict(data)
        images = data[IMAGES]
        single = images.shape.rank == 3
        batch = images[None] if single else images
        shape = tf.shape(batch)
        boxes = self._default_boxes(shape[0], shape[1], shape[2])
        cropped = self._crop(tf.cast(batch, tf.float32), boxes, self._inference_interpolation)
        cropped = _restore_dtype(cropped, images.dtype, self.value_range)
        out[IMAGES] = cropped[0] if single else cropped
        if MASKS in data:
            masks = data[MASKS][None] if single else data[MASKS]
            masks = self._crop_masks(masks, boxes)
            out[MASKS] = masks[0] if single else masks
        if BOXES in data:
            value = data[BOXES]
            if single:
                value = {k: v[None] for k, v in value.items()}
            value = augment_bounding_boxes(self, value, {"boxes": boxes}, (shape[1], shape[2]),
                                           (self.height, self.width))
            out[BOXES] = {k: v[0] for k, v in value.items()} if single else value
        return out

    def _crop_masks(self, masks, boxes):
        if masks.shape.rank == 3:
            return self._crop(masks[..., None], boxes, "nearest")[..., 0]
        return self._crop(masks, boxes, "nearest")

    def sample_params(self, batch_size, images, draws):
        h_in, w_in = tf.shape(images)[1], tf.shape(images)[2]
        boxes = self._random_boxes(batch_size, h_in, w_in, draws)
        apply = draws.bernoulli([batch_size], self.live_p())
        boxes = tf.where(apply[:, None], boxes, self._default_boxes(batch_size, h_in, w_in))
        return {"boxes": boxes}

    def augment_segmentation_masks(self, masks, params):
        return self._crop_masks(masks, params["boxes"])

    def augment_bounding_boxes(self, boxes, params, height, width):
        return self._crop_boxes(boxes, params["boxes"])

    # -- geometry protocol (keras_aug.layers.pipeline fuses these into one warp)
    geometric = True

    def output_size(self, height, width):
        return self.height, self.width

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def compute_output_spec(self, inputs, labels=None, training=None):
        inputs = inputs if labels is None else (inputs, labels)

        def spec(t, cropped):
            shape = tuple(t.shape)
            if cropped and len(shape) >= 3:
                shape = (*shape[:-3], self.height, self.width, shape[-1]) if len(shape) in (3, 4) \
                    else shape
            return keras.KerasTensor(shape, t.dtype)

        if isinstance(inputs, dict):
            return {k: (keras.tree.map_structure(lambda t: spec(t, False), v) if k == BOXES
                        else spec(v, k == IMAGES)) for k, v in inputs.items()}
        if isinstance(inputs, (tuple, list)):
            return (spec(inputs[0], True), spec(inputs[1], False))
        return spec(inputs, True)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomCrop(_CropLayer):
    """Crop each image to `height x width` at its own random offset (exact, no interpolation).

    Keras' RandomCrop draws one offset per batch (keras#16399); here every sample has its own.
    Outside training (and for samples left out by `p`) the crop is the centre crop, so a model
    sees one image size in `fit` and `predict`.

    Args:
        height, width: output size in pixels, at most the input size.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomCrop(24, 24, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))  # (8, 24, 24, 3)
    """

    def _random_boxes(self, batch_size, h_in, w_in, draws):
        oy = draws.integers([batch_size], 0, h_in - self.height + 1)
        ox = draws.integers([batch_size], 0, w_in - self.width + 1)
        return tf.stack([oy, ox], axis=1)

    def _default_boxes(self, batch_size, h_in, w_in):
        centre = tf.stack([(h_in - self.height) // 2, (w_in - self.width) // 2])
        return tf.broadcast_to(centre[None], [batch_size, 2])

    def _crop(self, images, boxes, interpolation):
        return ops.crop(images, boxes[:, 0], boxes[:, 1], self.height, self.width)

    def _crop_boxes(self, boxes, crops):
        return box_ops.crop_boxes(boxes, top=crops[:, 0], left=crops[:, 1])

    interpolates = False

    def geometry_matrix(self, params, height, width):
        offsets = tf.cast(params["boxes"], tf.float32)
        return ops.translation_matrix(-offsets[:, 1], -offsets[:, 0])

    def augment_images(self, images, params):
        return self._crop(images, params["boxes"], "bilinear")


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomResizedCrop(_CropLayer):
    """Crop a random area and aspect ratio per sample and resize it to `height x width`.

    torchvision's sampling: up to 10 tries of an area fraction uniform in `scale` and an aspect
    ratio log-uniform in `ratio`; the first crop that fits is used, else the centre crop with the
    ratio clamped into `ratio`. All tries are drawn at once for the whole batch (no loops). Crop
    and resize are one bilinear pass (edge-clamped, no antialiasing). Outside training, the
    largest centred box with the output's aspect ratio is resized (Keras' "smart resize").

    Args:
        height, width: output size in pixels.
        scale: `(min, max)` fraction of the image area, within (0, 1].
        ratio: `(min, max)` aspect ratio (width / height), positive.
        interpolation: `"bilinear"` or `"nearest"` (masks always use nearest).
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomResizedCrop(32, 32, scale=(0.5, 1.0), seed=0)
        >>> out = layer(tf.random.uniform([8, 48, 64, 3], 0, 255))  # (8, 32, 32, 3)
    """

    attempts = 10
    scale = Live(lambda name, v: check_positive_range(name, v, low=0.0, high=1.0))
    ratio = Live(check_positive_range)

    def __init__(self, height: int, width: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                 interpolation: str = "bilinear", **kwargs):
        super().__init__(height, width, **kwargs)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = check_choice("interpolation", interpolation, ops.INTERPOLATIONS)

    def _check_image_size(self, images):
        return None  # resizing: any input size works

    def _random_boxes(self, batch_size, h_in, w_in, draws):
        k = self.attempts
        h_f, w_f = tf.cast(h_in, tf.float32), tf.cast(w_in, tf.float32)
        scale, log_ratios = self.live("scale"), tf.math.log(self.live("ratio"))
        area = draws.uniform([batch_size, k], scale[0], scale[1]) * h_f * w_f
        log_ratio = draws.uniform([batch_size, k], log_ratios[0], log_ratios[1])
        aspect = tf.exp(log_ratio)
        w = tf.round(tf.sqrt(area * aspect))
        h = tf.round(tf.sqrt(area / aspect))
        fits = (w > 0) & (w <= w_f) & (h > 0) & (h <= h_f)
        first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
        pick = lambda t: tf.gather(t, first, axis=1, batch_dims=1)  # noqa: E731
        h, w = pick(h), pick(w)
        top = tf.floor(draws.uniform([batch_size]) * (h_f - h + 1.0))
        left = tf.floor(draws.uniform([batch_size]) * (w_f - w + 1.0))
        boxes = tf.stack([top, left, h, w], axis=1)
        fallback = self._fallback_boxes(batch_size, h_f, w_f)
        return tf.where(tf.reduce_any(fits, axis=1)[:, None], boxes, fallback)

    def _fallback_boxes(self, batch_size, h_f, w_f):
        """torchvision's fallback: the centre crop with the aspect ratio clamped into `ratio`."""
        in_ratio = w_f / h_f
        ratio = self.live("ratio")
        lo, hi = ratio[0], ratio[1]
        w = tf.where(in_ratio < lo, w_f, tf.where(in_ratio > hi, tf.round(h_f * hi), w_f))
        h = tf.where(in_ratio < lo, tf.round(w_f / lo), h_f)
        box = tf.stack([tf.floor((h_f - h) / 2), tf.floor((w_f - w) / 2), h, w])
        return tf.broadcast_to(box[None], [batch_size, 4])

    def _default_boxes(self, batch_size, h_in, w_in):
        h_f, w_f = tf.cast(h_in, tf.float32), tf.cast(w_in, tf.float32)
        target = self.width / self.height
        w = tf.minimum(w_f, h_f * target)
        h = tf.minimum(h_f, w_f / target)
        box = tf.stack([(h_f - h) / 2, (w_f - w) / 2, h, w])
        return tf.broadcast_to(box[None], [batch_size, 4])

    def _crop(self, images, boxes, interpolation):
        return ops.resized_crop(images, boxes, self.height, self.width, interpolation)

    def _crop_boxes(self, boxes, crops):
        return box_ops.resized_crop_boxes(boxes, crops, self.height, self.width)

    interpolates = True

    def geometry_matrix(self, params, height, width):
        return ops.resized_crop_matrix(params["boxes"], self.height, self.width)

    def augment_images(self, images, params):
        return self._crop(images, params["boxes"], self.interpolation)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "ratio": self.ratio,
                "interpolation": self.interpolation}


@keras.saving.register_keras_serializable(package="keras_aug")
class CenterCrop(RandomCrop):
    """Crop the centre `height x width` of every image, in training and inference alike.

    Deterministic (as Keras' CenterCrop, which is applied at inference too); an exact slice.
    Unlike Keras it refuses images smaller than the crop instead of resizing them.

    Args:
        height, width: output size in pixels, at most the input size.
        value_range: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.CenterCrop(24, 24)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))  # (8, 24, 24, 3)
    """

    def __init__(self, height: int, width: int, **kwargs):
        if kwargs.get("p", 1.0) != 1.0:
            raise ValueError(f"CenterCrop is deterministic: p must be 1.0, got {kwargs['p']!r}")
        super().__init__(height, width, **kwargs)

    def _random_boxes(self, batch_size, h_in, w_in, draws):
        return self._default_boxes(batch_size, h_in, w_in)

    def _crop(self, images, boxes, interpolation):
        h_in, w_in = images.shape[1], images.shape[2]
        if h_in is None or w_in is None:  # unknown size: the per-sample gather path
            return super()._crop(images, boxes, interpolation)
        top, left = (h_in - self.height) // 2, (w_in - self.width) // 2
        return images[:, top:top + self.height, left:left + self.width]  # a static slice
