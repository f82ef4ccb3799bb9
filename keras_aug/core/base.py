"""The base augmentation layer: standardize input, sample per-sample parameters, apply, restore.

Subclasses implement `sample_params` (per-sample random parameters for the whole batch, drawn from
a `Draws`) and `augment_images` (a pure batched op of images and parameters), and where they
change them `augment_labels` / `augment_segmentation_masks` / `augment_bounding_boxes`
(boxes: see `keras_aug.core.boxes`). The base class does the rest:
input formats, validation, dtype handling, the `p=` per-sample probability, seeding, XLA
compilation, the training/inference switch and serialization.
"""
from __future__ import annotations

import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras.src.backend.common import global_state

from keras_aug.core.boxes import (
    BOXES,
    augment_bounding_boxes,
    check_box_arguments,
    check_layer_takes_boxes,
    standardize_bounding_boxes,
)
from keras_aug.core.live import Live, check_strength, live_attributes
from keras_aug.core.random import Draws, make_generator
from keras_aug.core.validation import (
    FLOAT_DTYPES,
    check_images,
    check_probability,
    check_value_range,
)

IMAGES, LABELS, MASKS = "images", "labels", "segmentation_masks"

# One compiled apply function per layer, kept outside the layer so that neither Keras nor
# SavedModel tracking tries to serialize it.
_COMPILED: "weakref.WeakKeyDictionary[AugmentationLayer, dict]"  # input rank -> tf.function
_COMPILED = weakref.WeakKeyDictionary()


class AugmentationLayer(keras.layers.Layer):
    """Base class of every keras_aug augmentation layer.

    Args:
        p: probability that each image is augmented (drawn per sample). `p=1.0` always applies.
        value_range: `(low, high)` range of the input values, `(0, 255)` by default as in Keras.
        seed: integer for a reproducible sequence of augmentations; `None` for fresh randomness
            (also distinct across tf.data service workers, which a fixed seed by definition is not).
        bounding_box_format: format of `"bounding_boxes"` inputs, as Keras (`"xyxy"`, `"yxyx"`,
            `"xywh"`, `"center_xywh"`, `"center_yxhw"`, `"rel_xyxy"`, `"rel_yxyx"`, `"rel_xywh"`,
            `"rel_center_xywh"`); required by layers that move boxes when boxes are given.
        min_visibility: a moved box keeps its label when at least this fraction of its area
            stays inside the image (and its clipped area is > 0); else it gets label -1 and
            coordinates 0. Default 0.0: Keras' rule (only boxes left with no area are dropped).

    Inputs: a batch `(B, H, W, C)` or one image `(H, W, C)`; a tuple `(images, labels)`; or a dict
    with `"images"` and optionally `"labels"`, `"segmentation_masks"`, `"bounding_boxes"`
    (`{"boxes": (B, N, 4), "labels": (B, N)}`, see `keras_aug.core.boxes`; other keys pass through).
    The same structure comes back; the caller's dict is never modified. Float inputs keep their
    dtype; uint8 inputs are augmented in float32 and returned as uint8 (rounded, clipped).

    Live state: `p`, `strength` and each layer's factor ranges are `Live` attributes (see
    `keras_aug.core.live`): assigning one takes effect at the next batch, with no retrace.
    `strength` in [0, 1] scales every range between its identity and its configured value (or
    `p`, for layers without ranges).

    Training switch: `layer(x)` on its own (e.g. in `ds.map(layer)`, or a `keras.Sequential` made
    only of augmentation layers) augments. Inside a model it augments only when the model is
    called with `training=True` (as `fit` does), so `predict`, `model(x)` and `model.export()`
    serve un-augmented outputs.

    Example:
        >>> class RandomDarken(AugmentationLayer):
        ...     # Scale each image by a factor in [0.5, 1], drawn per image.
        ...     def sample_params(self, batch_size, images, draws):
        ...         return {"factor": draws.uniform([batch_size], 0.5, 1.0)}
        ...     def augment_images(self, images, params):
        ...         return images * params["factor"][:, None, None, None]
        >>> out = RandomDarken(seed=0)(tf.fill([4, 8, 8, 3], 200.0))
        >>> bool(tf.reduce_all(out <= 200.0)), out.shape
        (True, TensorShape([4, 8, 8, 3]))
    """

    takes_labels = True  # make_pipeline passes (images, labels) to these layers
    jit_compile = True  # subclasses whose ops have no XLA kernel set False
    channels: tuple[int, ...] | None = (1, 3, 4)
    applies_p = True  # False: the subclass applies `p` itself (crops, which change the size)
    # Whether `strength` scales `p`; None: when the layer has no Live range with an identity.
    strength_scales_p: bool | None = None

    p = Live(check_probability)
    strength = Live(check_strength)

    def __init__(self, p: float = 1.0, value_range=(0, 255), seed: int | None = None,
                 strength: float = 1.0, bounding_box_format: str | None = None,
                 min_visibility: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.p = p
        self.strength = strength
        self.bounding_box_format, self.min_visibility = check_box_arguments(
            bounding_box_format, min_visibility)
        self.value_range = check_value_range(value_range)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = make_generator(self.seed)
        self._warned_range = False
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.supports_jit = self.jit_compile

    # ----------------------------------------------------------------- live state
    def live(self, name: str) -> tf.Tensor:
        """The in-graph value of Live attribute `name`, scaled by `strength` where it has an
        identity (float32; a range reads as a tensor of shape (2,))."""
        spec = live_attributes(type(self))[name]
        value = tf.convert_to_tensor(self._live_variables[name])
        if name == "strength":
            # a Pipeline's strength scales its layers' (a weak reference: no cycle for savers)
            outer = self.__dict__.get("_outer")
            outer = None if outer is None else outer()
            return value if outer is None else value * outer.live("strength")
        if spec.identity is not None:
            value = spec.identity + self.live("strength") * (value - spec.identity)
        return value

    def live_p(self) -> tf.Tensor:
        """The in-graph per-sample probability: `p`, times `strength` for layers without ranges."""
        p = self.live("p")
        scales = self.strength_scales_p
        if scales is None:
            scales = not any(spec.identity is not None
                             for spec in live_attributes(type(self)).values())
        return p * self.live("strength") if scales else p

    @property
    def live_variables(self) -> dict[str, tf.Variable]:
        """The variables behind the Live attributes (read-only view; assign the attributes)."""
        return dict(self._live_variables)

    def reseed(self, seed: int) -> None:
        """Restart the layer's random sequence at `seed`: the next calls repeat the draws a layer
        built with `seed=seed` makes (a search scores every candidate on the same draws).

        Args:
            seed: a non-negative integer.

        Example:
            >>> layer = keras_aug.layers.RandomInvert(p=0.5, seed=0)
            >>> x = tf.random.uniform([8, 4, 4, 3], 0, 255)
            >>> layer.reseed(3); a = layer(x)
            >>> layer.reseed(3); b = layer(x)
            >>> bool(tf.reduce_all(a == b))
            True
        """
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if self.seed is None:
            raise ValueError(f"{type(self).__name__} was built with seed=None (fresh randomness "
                             f"per process); construct it with seed= to reseed it")
        self._rng.reset_from_seed(int(seed))

    def _check_live(self, name: str, value) -> None:
        """Hook: cross-checks of a Live value against other settings (raise ValueError)."""

    def __setattr__(self, name, value):
        # After the first call, settings that shape the compiled graph (mode, interpolation,
        # value_range, ...) are fixed: assigning one would silently change nothing, so it raises.
        frozen = self.__dict__.get("_frozen_settings")
        if frozen and name in frozen:
            live = sorted(n for n in live_attributes(type(self)) if not n.startswith("_"))
            raise AttributeError(
                f"{type(self).__name__}.{name} is fixed once the layer has run (it shapes the "
                f"compiled graph); construct a new layer with {name}={value!r}. Settable at "
                f"any time: {', '.join(live)}")
        super().__setattr__(name, value)

    def _freeze_settings(self) -> None:
        if "_frozen_settings" not in self.__dict__:
            # Live attributes and properties with setters (aliases, a policy) stay settable.
            settable = set(live_attributes(type(self))) | {"name", "trainable", "dtype"} | {
                name for name, value in vars_of(type(self)).items()
                if isinstance(value, property) and value.fset is not None}
            self.__dict__["_frozen_settings"] = frozenset(set(self.get_config()) - settable)

    # ----------------------------------------------------------------- subclass hooks
    def sample_params(self, batch_size: tf.Tensor, images: tf.Tensor, draws: Draws) -> dict:
        """Per-sample parameters for the whole batch (tensors with leading dim `batch_size`)."""
        return {}

    def augment_images(self, images: tf.Tensor, params: dict) -> tf.Tensor:
        """Batched op on float32 images in `value_range`."""
        raise NotImplementedError

    def augment_labels(self, labels: tf.Tensor, params: dict) -> tf.Tensor:
        return labels

    def augment_segmentation_masks(self, masks: tf.Tensor, params: dict) -> tf.Tensor:
        return masks

    def augment_bounding_boxes(self, boxes: tf.Tensor, params: dict, height, width) -> tf.Tensor:
        """Absolute `xyxy` boxes (B, N, 4) on the input images (`height x width`) -> the same
        boxes on the output images, unclipped (the engine clips and drops them afterwards)."""
        raise ValueError(f"{type(self).__name__} cannot transform bounding boxes")

    # ----------------------------------------------------------------- engine
    def call(self, inputs, labels=None, training=None):
        if labels is not None:  # ds.map(layer) on (images, labels) elements passes two arguments
            inputs = (inputs, labels)
        if training is None:
            training = self._is_pipeline_call()
        if isinstance(training, bool) and not training:
            return inputs
        data, restore = _standardize(inputs)
        images = data[IMAGES]
        check_images(images, self.channels)
        if BOXES in data:
            check_layer_takes_boxes(self)
        self._check_values(images)
        if not isinstance(training, bool):  # a symbolic training flag
            out = tf.cond(
                tf.cast(training, tf.bool), lambda: self.augment(data), lambda: dict(data)
            )
        else:
            out = self.augment(data)
        return restore(out)

    def augment(self, data: dict, key: tf.Tensor | None = None) -> dict:
        """Augment a standardized batch dict. `key` (int64 shape [2]) fixes the randomness."""
        if key is None:
            key = self._rng.make_seeds(1)[:, 0]
            if self.seed is None:
                # The generator's state is copied into every tf.data service worker (and every
                # process) that runs this graph; an unseeded per-kernel salt keeps their draws apart.
                key = tf.bitwise.bitwise_xor(key, tf.raw_ops.RandomUniformInt(
                    shape=[2], minval=tf.constant(0, tf.int64), maxval=tf.constant(2**62, tf.int64),
                    seed=0, seed2=0))
        # One function per input rank: with reduce_retracing, a rank-3 call after a rank-4 one
        # would otherwise retrace with an unknown rank and mistake the image for a batch.
        self._freeze_settings()
        fns = _COMPILED.setdefault(self, {})
        rank = data[IMAGES].shape.rank
        fn = fns.get(rank)
        if fn is None:
            fn = tf.function(self._augment_batch, jit_compile=self.jit_compile, reduce_retracing=True)
            fns[rank] = fn
        tensors = {k: v for k, v in data.items() if k in (IMAGES, LABELS, MASKS, BOXES)}
        return {**data, **fn(tensors, key)}  # other keys pass through untouched

    def _augment_batch(self, data: dict, key: tf.Tensor) -> dict:
        images = data[IMAGES]
        single = images.shape.rank == 3
        if single:
            data = {k: (_batch(v) if k in (IMAGES, LABELS, MASKS, BOXES) else v)
                    for k, v in data.items()}
            images = data[IMAGES]
        dtype = images.dtype
        x = tf.cast(images, tf.float32)
        batch_size = tf.shape(x)[0]
        draws = Draws(key)
        params = self.sample_params(batch_size, x, draws)
        apply = None
        if self.applies_p:  # always drawn: p is read in-graph
            apply = draws.bernoulli([batch_size], self.live_p())
            folded = self.fold_p(params, apply)
            if folded is not None:  # identity parameters where p left a sample out
                params, apply_select = folded, False
            else:
                apply_select = True
        out = self._apply_all({**data, IMAGES: x}, params)
        y = out[IMAGES]
        if apply is not None and apply_select:
            # A select after a gather-based op does not fuse (measured: +80 % on a rotation),
            # hence fold_p where a layer has identity parameters.
            y = _select(apply, y, x)
            for k in (LABELS, MASKS):
                if k in data:
                    out[k] = _select(apply, out[k], tf.cast(data[k], out[k].dtype))
        if BOXES in data:
            out[BOXES] = augment_bounding_boxes(self, data[BOXES], params, _hw(x), _hw(y), apply)
        out[IMAGES] = _restore_dtype(y, dtype, self.value_range)
        if single:
            out = {k: (_unbatch(v) if k in (IMAGES, LABELS, MASKS, BOXES) else v)
                   for k, v in out.items()}
        return out

    def fold_p(self, params: dict, apply: tf.Tensor) -> dict | None:
        """Hook: `params` with each op's identity value where `apply` (B,) is False, so no
        select is needed; None (the default) selects the input back instead."""
        return None

    def _apply_all(self, data: dict, params: dict) -> dict:
        """The apply step on a float32 batch dict: images, labels and masks together."""
        out = dict(data)
        out[IMAGES] = self.augment_images(data[IMAGES], params)
        if LABELS in data:
            out[LABELS] = self.augment_labels(data[LABELS], params)
        if MASKS in data:
            out[MASKS] = self.augment_segmentation_masks(data[MASKS], params)
        return out

    def _is_pipeline_call(self) -> bool:
        """True when this layer is called on its own or by an augmentation-only Sequential."""
        ctx = global_state.get_global_attribute("current_call_ctx")
        entry = None if ctx is None else ctx.entry_layer
        if entry is None or entry is self or isinstance(entry, AugmentationLayer):
            return True
        return isinstance(entry, keras.Sequential) and all(
            isinstance(layer, AugmentationLayer) for layer in entry.layers
        )

    def _check_values(self, images: tf.Tensor) -> None:
        """Eager-only value checks: NaN/inf is an error; values far outside value_range warn once."""
        if not tf.executing_eagerly() or images.dtype == tf.uint8:
            return
        # Three reductions on the tensor, not a numpy copy of the whole batch.
        if not bool(tf.reduce_all(tf.math.is_finite(images))):
            raise ValueError("images contain NaN or infinite values")
        if self._warned_range or tf.size(images) == 0:
            return
        lo, hi = float(tf.reduce_min(images)), float(tf.reduce_max(images))
        low, high = self.value_range
        span = high - low
        if (
            lo < low - 0.05 * span
            or hi > high + 0.05 * span
            or (high > 1.5 and 0 < hi <= 1.0)
        ):
            self._warned_range = True
            warnings.warn(
                f"{self.name}: images span [{lo:.3g}, {hi:.3g}] but value_range="
                f"{self.value_range}. Pass the range your images use, e.g. value_range=(0, 1).",
                stacklevel=3,
            )

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, labels=None, training=None):
        inputs = inputs if labels is None else (inputs, labels)
        return keras.tree.map_structure(lambda t: keras.KerasTensor(t.shape, t.dtype), inputs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"p": self.p, "value_range": self.value_range, "seed": self.seed,
                       "strength": self.strength,
                       "bounding_box_format": self.bounding_box_format,
                       "min_visibility": self.min_visibility})
        return config


def vars_of(cls) -> dict:
    """Class attributes of `cls` and its bases (the most derived wins)."""
    found: dict = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass))
    return found


def _standardize(inputs):
    """Any accepted input -> (dict of tensors, function mapping an output dict back)."""
    if isinstance(inputs, dict):
        if IMAGES not in inputs:
            raise ValueError(f"A dict input needs an 'images' key, got keys {sorted(inputs)}")
        data = {k: _to_tensor(v) if k in (IMAGES, LABELS, MASKS) else v for k, v in inputs.items()}
        if BOXES in data:
            data[BOXES] = standardize_bounding_boxes(data[BOXES], data[IMAGES])
        return data, lambda out: out
    if isinstance(inputs, (tuple, list)):
        if len(inputs) != 2:
            raise ValueError(
                f"A tuple input must be (images, labels), got a {type(inputs).__name__} "
                f"of length {len(inputs)}"
            )
        data = {IMAGES: _to_tensor(inputs[0]), LABELS: _to_tensor(inputs[1])}
        return data, lambda out: (out[IMAGES], out[LABELS])
    return {IMAGES: _to_tensor(inputs)}, lambda out: out[IMAGES]


def _to_tensor(x):
    return x if isinstance(x, (tf.Tensor, tf.Variable)) else tf.convert_to_tensor(x)


def _batch(value):
    return tf.nest.map_structure(lambda t: t[None], value)


def _unbatch(value):
    return tf.nest.map_structure(lambda t: t[0], value)


def _hw(images: tf.Tensor) -> tuple:
    """(height, width): static ints when known, else scalar tensors."""
    shape = tf.shape(images)
    return tuple(images.shape[i] if images.shape[i] is not None else shape[i] for i in (1, 2))


def _select(condition: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.where(tf.reshape(condition, [-1] + [1] * (a.shape.rank - 1)), a, b)


def _restore_dtype(x: tf.Tensor, dtype: tf.DType, value_range) -> tf.Tensor:
    if dtype == tf.uint8:
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
    if dtype in FLOAT_DTYPES:
        return tf.cast(x, dtype)
    return x
