"""Composition: `Pipeline` (one draw, one warp, one cast) and per-sample RandomApply/Choice/Order.

A `keras.Sequential` of augmentation layers resamples once per geometric layer (blurring the
image each time), casts and rounds between layers and compiles each layer on its own. `Pipeline`
samples every layer's parameters from one key, multiplies the per-sample matrices of each run of
consecutive geometric layers (flips, the affine family, perspective, crops and resized crops)
into ONE matrix and resamples once, then runs the other layers in order on float32, casting and
rounding once at the end, all in one XLA program.

Geometric layers take part through a small protocol: `geometric = True`,
`geometry_matrix(params, height, width)` (output->input, per sample), `output_size(height,
width)` and `interpolates` (False for flips and integer crops, which alone are exact gathers and
stay so when they are the only geometry in a run).
"""
from __future__ import annotations

import numbers
import weakref

import keras
import tensorflow as tf

from keras_aug.core import IMAGES, LABELS, MASKS, AugmentationLayer
from keras_aug.core.base import _select, _standardize
from keras_aug.core.live import Live
from keras_aug.core.validation import check_images, check_probability
from keras_aug.ops import boxes as box_ops
from keras_aug.ops import geometry as geometry_ops

__all__ = ["Pipeline", "RandomApply", "RandomChoice", "RandomOrder"]


def _check_layers(name: str, layers, least: int = 1) -> list[AugmentationLayer]:
    if isinstance(layers, AugmentationLayer) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"{name} must be a list of keras_aug layers, got {type(layers).__name__}")
    if len(layers) < least:
        raise ValueError(f"{name} needs at least {least} layer(s), got {len(layers)}")
    for i, layer in enumerate(layers):
        if not isinstance(layer, AugmentationLayer):
            raise TypeError(
                f"{name}[{i}] is {type(layer).__module__}.{type(layer).__name__}, not a keras_aug "
                f"layer: a Pipeline samples, fuses and applies its layers itself, which only "
                f"keras_aug layers support (apply other layers before or after it)")
        if getattr(layer, "mixes_labels", False):
            raise ValueError(f"{name}[{i}]: {type(layer).__name__} mixes images across the batch "
                             f"and cannot be composed; apply it after the composition")
    return list(layers)


def _is_crop(layer) -> bool:
    return hasattr(layer, "_deterministic")


class _Composite(AugmentationLayer):
    """Shared plumbing: sub-layers, their value range, serialization, parameter sampling.

    The composite's `strength` multiplies its layers' own strengths (it scales their ranges,
    or their `p` where they have none); its `p` is its own.
    """

    strength_scales_p = False

    def __init__(self, layers, value_range=None, **kwargs):
        layers = _check_layers("layers", layers)
        ranges = {layer.value_range for layer in layers}
        if value_range is None:
            if len(ranges) > 1:
                raise ValueError(f"the layers use different value ranges {sorted(ranges)}; give "
                                 f"them one range (value_range=...)")
            value_range = ranges.pop()
        super().__init__(value_range=value_range, **kwargs)
        if any(layer.value_range != self.value_range for layer in layers):
            raise ValueError(
                f"every layer must use value_range={self.value_range}, got "
                f"{[layer.value_range for layer in layers]}")
        for i, layer in enumerate(layers):
            if layer.bounding_box_format not in (None, self.bounding_box_format):
                raise ValueError(
                    f"layers[{i}] ({layer.name}) has bounding_box_format="
                    f"{layer.bounding_box_format!r} but this {type(self).__name__} has "
                    f"bounding_box_format={self.bounding_box_format!r}: the composition reads "
                    f"and writes the boxes, so give it the format (its layers need none)")
        for layer in layers:
            outer = layer.__dict__.get("_outer")
            if outer is not None and outer() is not None:
                raise ValueError(f"{layer.name} is already part of {outer().name}; a layer "
                                 f"instance can belong to one composition (make another)")
            layer.__dict__["_outer"] = weakref.ref(self)
        self.layers = layers
        self.channels = _common_channels(layers)
        self.jit_compile = self.supports_jit = all(layer.jit_compile for layer in layers)

    @property
    def refuses_boxes(self) -> str | None:
        reasons = [f"{type(layer).__name__}: {layer.refuses_boxes}" for layer in self.layers
                   if getattr(layer, "refuses_boxes", None)]
        return "; ".join(reasons) or None

    @property
    def boxes_unchanged(self) -> bool:
        return all(getattr(layer, "boxes_unchanged", False) for layer in self.layers)

    def build(self, input_shape=None):
        for layer in self.layers:  # augmentation layers hold no weights
            layer.built = True
        self.built = True

    def _sample_all(self, batch_size, images, draws) -> list[dict]:
        """Each layer's parameters (and its per-sample `apply` mask) from the one draw."""
        out = []
        proxy = images
        height, width = _static_size(images)
        for layer in self.layers:
            params = dict(layer.sample_params(batch_size, proxy, draws))
            if layer.applies_p:
                params["_apply"] = draws.bernoulli([batch_size], layer.live_p())
            if _is_crop(layer):
                height, width = layer.output_size(height, width)
                proxy = tf.zeros([batch_size, height, width, images.shape[-1]], images.dtype)
            out.append(params)
        return out

    def get_config(self):
        return {**super().get_config(),
                "layers": [keras.saving.serialize_keras_object(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = [keras.saving.deserialize_keras_object(c) for c in config["layers"]]
        return cls(**config)


def _common_channels(layers):
    allowed = None
    for layer in layers:
        if layer.channels is not None:
            allowed = set(layer.channels) if allowed is None else allowed & set(layer.channels)
    return None if allowed is None else tuple(sorted(allowed))


def _static_size(images):
    shape = tf.shape(images)
    return (images.shape[1] if images.shape[1] is not None else shape[1],
            images.shape[2] if images.shape[2] is not None else shape[2])


def _apply_one(layer, data: dict, params: dict) -> dict:
    """One layer's apply step on float32 data, with its per-sample `p` (as the engine does)."""
    out = layer._apply_all(data, params)
    if "_apply" in params:
        for key in (IMAGES, LABELS, MASKS):
            if key in data:
                out[key] = _select(params["_apply"], out[key], tf.cast(data[key], out[key].dtype))
    return out


def _matrix(layer, params, height, width):
    """The layer's per-sample matrix, the identity where its `p` left the sample out."""
    matrix = layer.geometry_matrix(params, height, width)
    if "_apply" in params:
        identity = geometry_ops.identity_matrix(tf.shape(matrix)[0])
        matrix = tf.where(params["_apply"][:, None, None], matrix, identity)
    return matrix


def _layer_boxes(layer, boxes, params, height, width):
    """One layer's box hook (absolute xyxy, unclipped), kept where its `p` left a sample out."""
    if getattr(layer, "boxes_unchanged", False):
        return boxes
    moved = layer.augment_bounding_boxes(boxes, params, height, width)
    if "_apply" in params:
        moved = tf.where(params["_apply"][:, None, None], moved, boxes)
    return moved


def _run_matrix(layers, all_params, height, width):
    """The composed output->input matrix of a geometric run, and its output size."""
    matrices = []
    for layer, params in zip(layers, all_params):
        matrices.append(_matrix(layer, params, height, width))
        height, width = layer.output_size(height, width)
    return geometry_ops.compose(*matrices), (height, width)


def _warp_settings(layers) -> tuple[str, str, float]:
    """The one interpolation / fill of a fused run; the layers must agree."""
    interpolations = {layer.interpolation for layer in layers if hasattr(layer, "interpolation")}
    fills = {(layer.fill_mode, layer.fill_value) for layer in layers if hasattr(layer, "fill_mode")}
    names = [type(layer).__name__ for layer in layers]
    if len(interpolations) > 1:
        raise ValueError(f"the geometric layers {names} resample once together, so they must use "
                         f"one interpolation, got {sorted(interpolations)}")
    if len(fills) > 1:
        raise ValueError(f"the geometric layers {names} resample once together, so they must use "
                         f"one fill_mode and fill_value, got {sorted(fills)}")
    interpolation = interpolations.pop() if interpolations else "bilinear"
    fill_mode, fill_value = fills.pop() if fills else ("nearest", 0.0)  # crops clamp at edges
    return interpolation, fill_mode, fill_value


def _warp_run(layers, all_params, data: dict) -> dict:
    """A run of consecutive geometric layers as ONE warp (or exact gathers when none
    interpolates)."""
    if not any(layer.interpolates for layer in layers):
        for layer, params in zip(layers, all_params):
            data = _apply_one(layer, data, params)
        return data
    interpolation, fill_mode, fill_value = _warp_settings(layers)
    matrix, (height, width) = _run_matrix(layers, all_params, *_static_size(data[IMAGES]))
    out = dict(data)
    out[IMAGES] = geometry_ops.warp(data[IMAGES], matrix, interpolation, fill_mode, fill_value,
                                    output_size=(height, width))
    if MASKS in data:
        masks = data[MASKS]
        squeeze = masks.shape.rank == 3
        masks = masks[..., None] if squeeze else masks
        mask_fill = "constant" if fill_mode == "constant" else fill_mode
        masks = geometry_ops.warp(masks, matrix, "nearest", mask_fill, 0,
                                  output_size=(height, width))
        out[MASKS] = masks[..., 0] if squeeze else masks
    return out


def _runs(layers):
    """Split layer indices into runs: consecutive geometric layers together, others alone."""
    runs, current = [], []
    for i, layer in enumerate(layers):
        if getattr(layer, "geometric", False):
            current.append(i)
            continue
        if current:
            runs.append(current)
            current = []
        runs.append([i])
    if current:
        runs.append(current)
    return runs


@keras.saving.register_keras_serializable(package="keras_aug")
class Pipeline(_Composite):
    """Apply `layers` in order as one augmentation: one random draw, one warp per run of
    geometric layers, one cast, one compiled program.

    Each layer keeps its own arguments, `p`, `strength` and live state; the Pipeline's own `p`
    and `strength` act on top (a sample left out by the Pipeline's `p` is unchanged). Masks
    follow the fused warp with nearest sampling. Consecutive geometric layers must agree on
    interpolation and fill (they resample once together).

    Args:
        layers: keras_aug layers (not mixing layers: apply MixUp/CutMix after the Pipeline).
        value_range: default: the layers' common range (they must share one).
        p, seed, strength: see `AugmentationLayer`.

    Example:
        >>> pipeline = keras_aug.layers.Pipeline([
        ...     keras_aug.layers.RandomResizedCrop(32, 32, scale=(0.5, 1.0)),
        ...     keras_aug.layers.RandomFlip("horizontal"),
        ...     keras_aug.layers.RandomAffine(rotation=0.05, shear_x=0.1),
        ...     keras_aug.layers.RandomColorJitter((0, 255), 0.2, 0.2, (0.4, 0.6), 0.02),
        ...     keras_aug.layers.RandomErasing(p=0.25),
        ... ], seed=0)
        >>> out = pipeline(tf.random.uniform([8, 48, 48, 3], 0, 255))  # (8, 32, 32, 3)
    """

    def __init__(self, layers, value_range=None, **kwargs):
        super().__init__(layers, value_range, **kwargs)
        if any(_is_crop(layer) for layer in self.layers):
            # a sample left out by the Pipeline's p would keep its input size
            self.applies_p = False
            if self.p != 1.0:
                raise ValueError(f"a Pipeline with crops changes the image size, so its p must "
                                 f"be 1.0 (give the other layers their own p), got {self.p!r}")
        self._runs = _runs(self.layers)
        for run in self._runs:  # fail at construction, not at the first batch
            run_layers = [self.layers[i] for i in run]
            if len(run) > 1 and any(layer.interpolates for layer in run_layers):
                _warp_settings(run_layers)

    @property
    def _crops(self) -> bool:
        return any(_is_crop(layer) for layer in self.layers)

    def augment_bounding_boxes(self, boxes, params, height, width):
        # A geometric run moves boxes with its one composed matrix, as it moves the pixels, and
        # the engine clips once at the end (no clipping between layers).
        all_params = params["layers"]
        for run in self._runs:
            layers = [self.layers[i] for i in run]
            run_params = [all_params[i] for i in run]
            if getattr(layers[0], "geometric", False):
                matrix, (out_h, out_w) = _run_matrix(layers, run_params, height, width)
                boxes = box_ops.warp_boxes(boxes, matrix)
                height, width = out_h, out_w
            else:
                boxes = _layer_boxes(layers[0], boxes, run_params[0], height, width)
        return boxes

    def sample_params(self, batch_size, images, draws):
        return {"layers": self._sample_all(batch_size, images, draws)}

    def augment_images(self, images, params):
        raise NotImplementedError  # _apply_all does images, labels and masks together

    def _apply_all(self, data: dict, params: dict) -> dict:
        all_params = params["layers"]
        for run in self._runs:
            layers = [self.layers[i] for i in run]
            run_params = [all_params[i] for i in run]
            if getattr(layers[0], "geometric", False):
                data = _warp_run(layers, run_params, data)
            else:
                data = _apply_one(layers[0], data, run_params[0])
        return data

    def call(self, inputs, labels=None, training=None):
        if not self._crops:
            return super().call(inputs, labels, training)
        # With crops the output size changes, so inference runs the crops' deterministic path.
        if labels is not None:
            inputs = (inputs, labels)
        if training is None:
            training = self._is_pipeline_call()
        data, restore = _standardize(inputs)
        check_images(data[IMAGES], self.channels)

        def inference():
            out = dict(data)
            for layer in self.layers:
                if _is_crop(layer):
                    out = layer._deterministic(out)
            return restore(out)

        if isinstance(training, bool):
            return super().call(inputs, training=True) if training else inference()
        return tf.cond(tf.cast(training, tf.bool),
                       lambda: super(Pipeline, self).call(inputs, training=True), inference)

    def compute_output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    def compute_output_spec(self, inputs, labels=None, training=None):
        spec = inputs if labels is None else (inputs, labels)
        for layer in self.layers:
            spec = layer.compute_output_spec(spec)
        return spec


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomApply(_Composite):
    """Apply `layer` to each sample with probability `rate` (on top of the layer's own `p`).

    Args:
        layer: a keras_aug layer (not a crop: use the crop's own `p`).
        rate: per-sample probability, live (assign `layer.rate` between batches).
        seed, strength: see `AugmentationLayer`.

    Example:
        >>> blur = keras_aug.layers.RandomApply(keras_aug.layers.RandomGaussianBlur(), rate=0.3)
        >>> out = blur(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    rate = Live(check_probability)

    def __init__(self, layer, rate: float = 0.5, **kwargs):
        if isinstance(layer, AugmentationLayer) and _is_crop(layer):
            raise ValueError(f"RandomApply cannot wrap {type(layer).__name__} (a crop changes "
                             f"the size); use its p argument instead")
        kwargs.pop("layers", None)
        super().__init__([layer], **kwargs)
        self.rate = rate
        inner = self.layers[0]
        self.geometric = getattr(inner, "geometric", False)
        self.interpolates = getattr(inner, "interpolates", False)
        for attr in ("interpolation", "fill_mode", "fill_value"):
            if hasattr(inner, attr):
                setattr(self, attr, getattr(inner, attr))

    @property
    def layer(self) -> AugmentationLayer:
        return self.layers[0]

    def sample_params(self, batch_size, images, draws):
        return {"inner": self._sample_all(batch_size, images, draws)[0],
                "keep": draws.bernoulli([batch_size], self.live("rate"))}

    def augment_images(self, images, params):
        raise NotImplementedError

    def _inner_params(self, params) -> dict:
        inner = dict(params["inner"])
        inner["_apply"] = params["keep"] & inner.get("_apply", True)
        return inner

    def _apply_all(self, data, params):
        return _apply_one(self.layer, data, self._inner_params(params))

    def geometry_matrix(self, params, height, width):
        return _matrix(self.layer, self._inner_params(params), height, width)

    def augment_bounding_boxes(self, boxes, params, height, width):
        return _layer_boxes(self.layer, boxes, self._inner_params(params), height, width)

    def output_size(self, height, width):
        return height, width

    def get_config(self):
        config = {**super().get_config(), "rate": self.rate,
                  "layer": keras.saving.serialize_keras_object(self.layer)}
        config.pop("layers")
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


class _PerSampleSelection(_Composite):
    """Each sample picks layers by index; geometric-only sets become one matrix and one warp,
    others run each candidate on the batch and keep it where picked."""

    def __init__(self, layers, **kwargs):
        super().__init__(layers, **kwargs)
        for layer in self.layers:
            if _is_crop(layer):
                raise ValueError(f"{type(self).__name__} cannot hold {type(layer).__name__} (a "
                                 f"crop changes the size, so samples would differ in size)")
        self.geometric = all(getattr(layer, "geometric", False) for layer in self.layers)
        self.interpolates = any(getattr(layer, "interpolates", False) for layer in self.layers)
        if self.geometric and len(self.layers) > 1:
            interpolation, fill_mode, fill_value = _warp_settings(self.layers)
            self.interpolation, self.fill_mode, self.fill_value = (
                interpolation, fill_mode, fill_value)

    def _steps(self, batch_size, draws) -> list[tf.Tensor]:
        """Per step, the index (B,) of the layer each sample applies."""
        raise NotImplementedError

    def sample_params(self, batch_size, images, draws):
        return {"layers": self._sample_all(batch_size, images, draws),
                "steps": tf.stack(self._steps(batch_size, draws), axis=1)}

    def augment_images(self, images, params):
        raise NotImplementedError

    def geometry_matrix(self, params, height, width):
        matrices = [_matrix(layer, p, height, width)
                    for layer, p in zip(self.layers, params["layers"])]
        stacked = tf.stack(matrices, axis=1)  # (B, K, 3, 3)
        steps = params["steps"]
        out = None
        for j in range(steps.shape[1]):
            step = tf.gather(stacked, steps[:, j], axis=1, batch_dims=1)
            out = step if out is None else geometry_ops.compose(out, step)
        return out

    def output_size(self, height, width):
        return height, width

    def augment_bounding_boxes(self, boxes, params, height, width):
        if self.geometric:
            return box_ops.warp_boxes(boxes, self.geometry_matrix(params, height, width))
        steps = params["steps"]
        for j in range(steps.shape[1]):
            result = boxes
            for k, (layer, layer_params) in enumerate(zip(self.layers, params["layers"])):
                picked = tf.equal(steps[:, j], k)
                moved = _layer_boxes(layer, boxes, layer_params, height, width)
                result = tf.where(picked[:, None, None], moved, result)
            boxes = result
        return boxes

    def _apply_all(self, data, params):
        if self.geometric and self.interpolates:
            return _warp_run([self], [params], data)
        steps = params["steps"]
        for j in range(steps.shape[1]):
            result = dict(data)
            for k, (layer, layer_params) in enumerate(zip(self.layers, params["layers"])):
                picked = tf.equal(steps[:, j], k)
                step_params = dict(layer_params)
                step_params["_apply"] = picked & layer_params.get("_apply", True)
                candidate = _apply_one(layer, data, step_params)
                for key in (IMAGES, LABELS, MASKS):
                    if key in data:
                        result[key] = _select(picked, candidate[key], result[key])
            data = result
        return data


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomChoice(_PerSampleSelection):
    """Each sample applies ONE of `layers`, picked per sample (optionally weighted).

    Geometric candidates become one per-sample matrix and one warp; other candidates each run on
    the batch and are kept where picked (cost: the sum of the candidates).

    Args:
        layers: keras_aug layers (no crops or mixing layers).
        weights: relative pick weights, one per layer (default: uniform).
        p, seed, strength: see `AugmentationLayer`.

    Example:
        >>> choice = keras_aug.layers.RandomChoice([
        ...     keras_aug.layers.RandomRotation(0.1), keras_aug.layers.RandomShear(0.2)])
        >>> out = choice(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, layers, weights=None, **kwargs):
        super().__init__(layers, **kwargs)
        if weights is not None:
            if (not isinstance(weights, (list, tuple)) or len(weights) != len(self.layers)
                    or not all(isinstance(w, numbers.Real) and not isinstance(w, bool) and w >= 0
                               for w in weights) or sum(weights) <= 0):
                raise ValueError(f"weights must be {len(self.layers)} non-negative numbers with a "
                                 f"positive sum (one per layer), got {weights!r}")
            weights = [float(w) for w in weights]
        self.weights_ = weights

    def _steps(self, batch_size, draws):
        k = len(self.layers)
        if self.weights_ is None:
            return [draws.integers([batch_size], 0, k)]
        cumulative = tf.math.cumsum(tf.constant(self.weights_) / sum(self.weights_))
        u = draws.uniform([batch_size])
        index = tf.reduce_sum(tf.cast(u[:, None] >= cumulative[None, :-1], tf.int32), axis=1)
        return [index]

    def get_config(self):
        return {**super().get_config(), "weights": self.weights_}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomOrder(_PerSampleSelection):
    """Apply all `layers` to each sample, in an order drawn per sample.

    Geometric layers become one per-sample product of matrices and one warp; with other layers,
    each of the K steps runs every layer on the batch and keeps it where it is that sample's
    step (cost: K times the sum of the layers).

    Args:
        layers: keras_aug layers (no crops or mixing layers).
        p, seed, strength: see `AugmentationLayer`.

    Example:
        >>> order = keras_aug.layers.RandomOrder([
        ...     keras_aug.layers.RandomBrightness(0.2), keras_aug.layers.RandomContrast(0.2)])
        >>> out = order(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def _steps(self, batch_size, draws):
        k = len(self.layers)
        order = tf.argsort(draws.uniform([batch_size, k]), axis=1)  # a random permutation
        return [tf.cast(order[:, j], tf.int32) for j in range(k)]
