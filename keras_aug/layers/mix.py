"""Mixing layers: MixUp, CutMix and RandomMixing (timm's Mixup), with per-sample mixing.

Each image is mixed with a partner from the same batch (a random single-cycle permutation, so no
image is its own partner) using its own random proportion. Labels come back as soft labels whose
weights are the true share of each image in the mixed result (CutMix: the pasted area after
clipping, not the sampled lambda). Integer labels need `num_classes`; one-hot labels are checked
against it when given. These layers need labels: call them on `(images, labels)` or a dict with
`"labels"` (e.g. `make_pipeline(ds, augment=keras_aug.layers.CutMix(num_classes=10))`).
"""
from __future__ import annotations

import contextlib
import numbers
import os

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core import IMAGES, LABELS, AugmentationLayer
from keras_aug.core.live import Live
from keras_aug.core.validation import check_integer, check_number, check_probability
from keras_aug.ops import mix as ops
from keras_aug.ops.erase import box_mask

__all__ = ["MixUp", "CutMix", "RandomMixing", "PuzzleMixModel"]


def _check_smoothing(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_alpha(name: str, value, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        value > 0 or (allow_zero and value == 0)
    )
    if not ok:
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {expected} (a Beta(alpha, alpha) parameter), "
                         f"got {value!r}")
    return float(value)


class MixingLayer(AugmentationLayer):
    """Base of the label-mixing layers: label checks, one-hot conversion and label smoothing.

    Args:
        num_classes: number of classes; required for integer labels, checked against one-hot.
        label_smoothing: timm-style smoothing applied to every target before mixing
            (`y * (1 - s) + s / num_classes`).
        p, value_range, seed: see `AugmentationLayer`; a sample not selected by `p` keeps its
            image and its (one-hot) label.
    """

    mixes_labels = True  # `kaug preview` shows label weights for these layers
    # As KerasAug (and Keras' CutMix): detection mixing (Mosaic, box-concatenating MixUp) is
    # another augmentation with its own label rules.
    refuses_boxes = (
        "it mixes image-level labels; mixing for detection (boxes of both images, cut boxes) is "
        "not implemented, so remove 'bounding_boxes' or use a geometric/colour layer")
    channels = None  # mixing works for any channel count
    label_smoothing = Live(_check_smoothing)

    def __init__(self, num_classes: int | None = None, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
            or num_classes < 2
        ):
            raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.label_smoothing = label_smoothing

    def augment(self, data: dict, key: tf.Tensor | None = None) -> dict:
        name = type(self).__name__
        if LABELS not in data:
            raise ValueError(
                f"{name} mixes labels, so it needs them: call it on (images, labels) or on a dict "
                f"with 'labels', got only images"
            )
        images = data[IMAGES]
        if images.shape.rank != 4:
            raise ValueError(
                f"{name} mixes images of a batch: images must have rank 4 (batch, height, width, "
                f"channels), got shape {images.shape}"
            )
        data = dict(data)
        data[LABELS] = self._one_hot(data[LABELS], images)
        return super().augment(data, key)

    def _one_hot(self, labels: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
        """Integer `(B,)`/`(B, 1)` or one-hot `(B, K)` labels -> smoothed float `(B, K)`."""
        name = type(self).__name__
        batch = images.shape[0]
        if labels.dtype.is_integer:
            if labels.shape.rank == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.shape.rank != 1:
                raise ValueError(
                    f"{name}: integer labels must be class ids of shape (batch,), got shape "
                    f"{labels.shape}; pass one-hot labels as floats of shape (batch, num_classes)"
                )
            if self.num_classes is None:
                raise ValueError(
                    f"{name}: integer labels need num_classes, e.g. {name}(num_classes=10), "
                    f"got num_classes=None"
                )
            self._check_class_ids(labels)
            labels = tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        elif labels.dtype.is_floating:
            if labels.shape.rank != 2:
                raise ValueError(
                    f"{name}: float labels must be one-hot of shape (batch, num_classes), got "
                    f"shape {labels.shape}"
                )
            k = labels.shape[1]
            if self.num_classes is not None and k is not None and k != self.num_classes:
                raise ValueError(
                    f"{name}: labels have {k} classes (shape {labels.shape}) but "
                    f"num_classes={self.num_classes}"
                )
            if k is not None and k < 2:
                raise ValueError(f"{name}: one-hot labels need >= 2 classes, got shape {labels.shape}")
        else:
            raise TypeError(f"{name}: labels must be integer or float, got dtype {labels.dtype.name}")
        if batch is not None and labels.shape[0] is not None and labels.shape[0] != batch:
            raise ValueError(
                f"{name}: labels have {labels.shape[0]} rows but images have batch size {batch}"
            )
        smoothing = tf.cast(self.live("label_smoothing"), labels.dtype)
        k = tf.cast(tf.shape(labels)[1], labels.dtype)
        return labels * (1.0 - smoothing) + smoothing / k

    def _check_class_ids(self, labels: tf.Tensor) -> None:
        message = (f"{type(self).__name__}: integer labels must lie in [0, num_classes="
                   f"{self.num_classes})")
        if tf.executing_eagerly():
            values = np.asarray(labels)
            if values.size and (values.min() < 0 or values.max() >= self.num_classes):
                raise ValueError(f"{message}, got values in [{values.min()}, {values.max()}]")
        else:  # inside tf.data or tf.function: a runtime check outside the compiled step
            tf.debugging.assert_non_negative(labels, message=message)
            tf.debugging.assert_less(labels, tf.cast(self.num_classes, labels.dtype), message=message)

    def compute_output_spec(self, inputs, labels=None, training=None):
        spec = super().compute_output_spec(inputs, labels, training)
        if isinstance(spec, tuple) and self.num_classes is not None:
            return (spec[0], keras.KerasTensor((spec[0].shape[0], self.num_classes), "float32"))
        return spec

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_aug")
class MixUp(MixingLayer):
    """MixUp (Zhang et al. 2018) with one lambda per sample.

    Each image becomes `lam * x + (1 - lam) * partner` with `lam ~ Beta(alpha, alpha)` drawn per
    sample (torchvision draws one lambda per batch), and its label `lam * y + (1 - lam) * y_partner`.
    Segmentation masks cannot be blended, so each sample keeps the mask of its dominant image
    (`lam >= 0.5`: its own, else the partner's); mask shapes are unchanged.

    Args:
        alpha: Beta distribution parameter, > 0 (Keras' default 0.2; the paper uses 0.2-1).
        num_classes, label_smoothing, p, value_range, seed: see `MixingLayer`.

    Example:
        >>> mixup = keras_aug.layers.MixUp(alpha=0.2, num_classes=10, seed=0)
        >>> images, soft_labels = mixup((tf.random.uniform([8, 32, 32, 3], 0, 255),
        ...                              tf.range(8) % 10))
    """

    alpha = Live(_check_alpha)

    def __init__(self, alpha: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def sample_params(self, batch_size, images, draws):
        alpha = self.live("alpha")
        return {"lam": draws.beta([batch_size], alpha, alpha),
                "partner": ops.cyclic_partner(draws.uniform([batch_size]))}

    def augment_images(self, images, params):
        return ops.blend(images, params["partner"], params["lam"])

    def augment_labels(self, labels, params):
        return ops.mix_labels(labels, params["partner"], params["lam"])

    def augment_segmentation_masks(self, masks, params):
        own = tf.reshape(params["lam"] >= 0.5, [-1] + [1] * (masks.shape.rank - 1))
        return tf.where(own, masks, tf.gather(masks, params["partner"]))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_aug")
class CutMix(MixingLayer):
    """CutMix (Yun et al. 2019) with one box per sample and exact label weights.

    Each image receives a box from its partner with sides `sqrt(1 - lam)` of the image sides,
    `lam ~ Beta(alpha, alpha)` per sample, centred uniformly in the image and clipped at the
    borders. The label weight is the pasted area after clipping (Keras uses the sampled lambda,
    off by up to 6 %). Segmentation masks get the partner's mask in the same box.

    Args:
        alpha: Beta distribution parameter, > 0 (the paper uses 1.0).
        num_classes, label_smoothing, p, value_range, seed: see `MixingLayer`.

    Example:
        >>> cutmix = keras_aug.layers.CutMix(num_classes=10, seed=0)
        >>> images, soft_labels = cutmix((tf.random.uniform([8, 32, 32, 3], 0, 255),
        ...                               tf.range(8) % 10))
    """

    alpha = Live(_check_alpha)

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def sample_params(self, batch_size, images, draws):
        shape = tf.shape(images)
        alpha = self.live("alpha")
        lam = draws.beta([batch_size], alpha, alpha)
        cy = draws.uniform([batch_size], 0.0, tf.cast(shape[1], tf.float32))
        cx = draws.uniform([batch_size], 0.0, tf.cast(shape[2], tf.float32))
        edges, weight = ops.cutmix_boxes(lam, cy, cx, shape[1], shape[2])
        return {"edges": edges, "weight": weight,
                "partner": ops.cyclic_partner(draws.uniform([batch_size]))}

    def _region(self, x, params):
        return box_mask(params["edges"], tf.shape(x)[1], tf.shape(x)[2])

    def augment_images(self, images, params):
        return ops.paste(images, params["partner"], self._region(images, params))

    def augment_labels(self, labels, params):
        return ops.mix_labels(labels, params["partner"], params["weight"])

    def augment_segmentation_masks(self, masks, params):
        return ops.paste(masks, params["partner"], self._region(masks, params))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomMixing(MixingLayer):
    """MixUp or CutMix per sample, with timm's `Mixup` options (per-sample, "elem" mode).

    Each sample is mixed with probability `prob`; a mixed sample uses CutMix with probability
    `switch_prob` (when both alphas are > 0), else MixUp. Label smoothing applies to every target,
    mixed or not, as in timm. CutMix label weights are the exact pasted area (timm's
    `correct_lam=True`).

    Args:
        mixup_alpha: MixUp Beta parameter; 0 disables MixUp.
        cutmix_alpha: CutMix Beta parameter; 0 disables CutMix.
        prob: probability that a sample is mixed (timm's `mix_prob`).
        switch_prob: probability of CutMix for a mixed sample when both are enabled.
        label_smoothing: default 0.1 as in timm; see `MixingLayer`.
        num_classes, p, value_range, seed: see `MixingLayer`.

    Example:
        >>> mixing = keras_aug.layers.RandomMixing(num_classes=10, seed=0)
        >>> images, soft_labels = mixing((tf.random.uniform([8, 32, 32, 3], 0, 255),
        ...                               tf.range(8) % 10))
    """

    mixup_alpha = Live(lambda name, v: _check_alpha(name, v, allow_zero=True))
    cutmix_alpha = Live(lambda name, v: _check_alpha(name, v, allow_zero=True))
    prob = Live(check_probability)
    switch_prob = Live(check_probability)

    def __init__(
        self,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        **kwargs,
    ):
        super().__init__(label_smoothing=label_smoothing, **kwargs)
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.prob = prob
        self.switch_prob = switch_prob

    def _check_live(self, name, value):
        other = {"mixup_alpha": "cutmix_alpha", "cutmix_alpha": "mixup_alpha"}.get(name)
        if other and value == 0 and getattr(self, other, None) == 0:
            raise ValueError("mixup_alpha and cutmix_alpha are both 0: at least one must be > 0")

    def sample_params(self, batch_size, images, draws):
        shape = tf.shape(images)
        mixup_alpha, cutmix_alpha = self.live("mixup_alpha"), self.live("cutmix_alpha")
        mixed = draws.bernoulli([batch_size], self.live("prob"))
        # an alpha of 0 disables its method (read in-graph: the alphas are live)
        switch = draws.bernoulli([batch_size], self.live("switch_prob"))
        use_cut = tf.where(mixup_alpha > 0, switch & (cutmix_alpha > 0), True)
        ones = tf.ones([batch_size])
        lam_mix = tf.where(mixup_alpha > 0, draws.beta(
            [batch_size], tf.maximum(mixup_alpha, 1e-3), tf.maximum(mixup_alpha, 1e-3)), ones)
        lam_cut = tf.where(cutmix_alpha > 0, draws.beta(
            [batch_size], tf.maximum(cutmix_alpha, 1e-3), tf.maximum(cutmix_alpha, 1e-3)), ones)
        lam_cut = tf.where(mixed & use_cut, lam_cut, 1.0)  # lam 1: an empty box
        cy = draws.uniform([batch_size], 0.0, tf.cast(shape[1], tf.float32))
        cx = draws.uniform([batch_size], 0.0, tf.cast(shape[2], tf.float32))
        edges, cut_weight = ops.cutmix_boxes(lam_cut, cy, cx, shape[1], shape[2])
        weight = tf.where(use_cut, cut_weight, lam_mix)
        weight = tf.where(mixed, weight, 1.0)
        return {"edges": edges, "weight": weight, "use_cut": use_cut & mixed,
                "partner": ops.cyclic_partner(draws.uniform([batch_size]))}

    def _pixel_weight(self, x, params):
        """Own-weight per pixel `(B, H, W)`: 0/1 in the box for CutMix samples, lam for MixUp."""
        region = box_mask(params["edges"], tf.shape(x)[1], tf.shape(x)[2])
        return tf.where(params["use_cut"][:, None, None], tf.cast(~region, tf.float32),
                        params["weight"][:, None, None])

    def augment_images(self, images, params):
        return ops.blend(images, params["partner"], self._pixel_weight(images, params))

    def augment_labels(self, labels, params):
        return ops.mix_labels(labels, params["partner"], params["weight"])

    def augment_segmentation_masks(self, masks, params):
        own = self._pixel_weight(masks, params) >= 0.5
        return ops.paste(masks, params["partner"], ~own)

    def get_config(self):
        return {**super().get_config(), "mixup_alpha": self.mixup_alpha,
                "cutmix_alpha": self.cutmix_alpha, "prob": self.prob,
                "switch_prob": self.switch_prob}


SALIENCY_DTYPES = ("auto", "float32", "bfloat16")  # no float16: input gradients underflow it


def fast_bfloat16(jit_compile: bool) -> bool:
    """Whether bfloat16 convolutions beat float32 here: an Ampere-or-newer GPU, or (without XLA,
    whose CPU convolutions have no bfloat16 path) oneDNN on a CPU with AVX512-BF16 or AMX."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return tuple(details.get("compute_capability", (0, 0))) >= (8, 0)
    if jit_compile or os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: no cheap way to ask
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def _computing_in(model: keras.Model, dtype: str):
    """Trace `model`'s float32 layers in `mixed_<dtype>` precision (same float32 weights).

    Dtype policies are read when a call is traced, so the graph built inside this context
    computes in `dtype`; the policies are restored on exit. A no-op for "float32".
    """
    layers = [] if dtype == "float32" else [
        layer for layer in model._flatten_layers(include_self=True)
        if layer.dtype_policy.name == "float32"
    ]
    try:
        for layer in layers:
            layer.dtype_policy = keras.DTypePolicy(f"mixed_{dtype}")
        yield
    finally:
        for layer in layers:
            layer.dtype_policy = keras.DTypePolicy("float32")


@tf.function(jit_compile=True)
def _solve_and_mix(images, saliency, lam, partner, which, grid_sizes: tuple, options: tuple):
    """The mask solver and transport of the grid `grid_sizes[which]`, always XLA-compiled.

    Even in a train step that is not (Keras' default on CPU): its many small ops then run as
    one fused program, 5-10x faster than op by op.
    """
    from keras_aug.ops import puzzlemix

    def branch(grid):
        @tf.autograph.experimental.do_not_convert  # plain TF ops: nothing to convert
        def run():
            return puzzlemix.puzzle_mix(images, saliency, lam, partner, grid, **dict(options))[:2]

        return run

    return tf.switch_case(which, [branch(g) for g in grid_sizes])


@keras.saving.register_keras_serializable(package="keras_aug")
class PuzzleMixModel(keras.Model):
    """PuzzleMix training (Kim et al. 2020) for any classifier, in one line, fully in-graph.

    `PuzzleMixModel(model)` trains `model` on PuzzleMix batches: each `train_step` runs one extra
    forward/backward pass on the clean batch for the saliency (input-gradient magnitude), picks a
    grid (`grid_sizes`, one per step, as the reference), solves each sample's block mask with
    iterated conditional modes and moves salient blocks by the greedy transport (see
    `keras_aug.ops.puzzlemix` for the objective and how the solver differs from the paper's graph
    cut), then trains on the mixed images with soft labels weighted by the mask mean. Prediction,
    evaluation and export use `model` unchanged. Both passes call `model(x, training=True)`.

    Args:
        model: a classifier producing `(batch, num_classes)` logits or probabilities.
        alpha: Beta(alpha, alpha) parameter of the per-sample prior share `lam` (paper: 1.0).
        grid_sizes: blocks per side to draw from each step; image sides must be divisible by
            each (paper: 2, 4, 8, 16).
        beta, gamma, eta: smoothness, boundary-discontinuity and prior weights (paper: 1.2, 0.5,
            0.2).
        sweeps: ICM sweeps of the mask solver.
        transport: move salient blocks into the visible region (paper: on).
        transport_eps: weight of the move distance in transport (paper: 0.8).
        value_range: range of the input images.
        saliency_dtype: precision of the saliency pass: "float32" (exact), "bfloat16" (the
            model's float32 layers compute in bfloat16 for this pass only, with the same
            weights), or "auto": "bfloat16" where `fast_bfloat16()` says it is
            faster, else "float32". The saliency only ranks blocks of 2x2 pixels or more, which a
            16-bit pass keeps: for a digits CNN the 4x4-block saliencies correlate at 0.9998
            (median) with float32's, label weights differ by 0.006 on average. On this CPU
            (AVX512-BF16, no XLA) the bfloat16 pass takes half the time of the float32 one.
        seed: integer for a reproducible sequence of mixes.

    Compile it with a loss that accepts soft labels (e.g.
    `keras.losses.CategoricalCrossentropy(from_logits=True)`); integer labels are converted to
    one-hot with the model's output width.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset, make_pipeline
        >>> classifier = keras.Sequential([keras.Input((32, 32, 1)),
        ...                                keras.layers.Conv2D(8, 3, activation="relu"),
        ...                                keras.layers.GlobalAveragePooling2D(),
        ...                                keras.layers.Dense(10)])                # logits
        >>> trainer = keras_aug.layers.PuzzleMixModel(classifier, grid_sizes=(2, 4), seed=0)
        >>> trainer.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
        >>> train_ds = make_pipeline(few_shot(load_dataset("digits").train, 2), batch_size=10)
        >>> history = trainer.fit(train_ds, epochs=1, verbose=0)   # trains `classifier`
        >>> logits = classifier.predict(tf.zeros([1, 32, 32, 1]), verbose=0)
    """

    mixes_labels = True

    def __init__(
        self,
        model: keras.Model,
        alpha: float = 1.0,
        grid_sizes=(2, 4, 8, 16),
        beta: float = 1.2,
        gamma: float = 0.5,
        eta: float = 0.2,
        sweeps: int = 4,
        transport: bool = True,
        transport_eps: float = 0.8,
        value_range=(0, 255),
        saliency_dtype: str = "auto",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        from keras_aug.core.random import make_generator
        from keras_aug.core.validation import check_value_range

        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
        self.model = model
        self.alpha = _check_alpha("alpha", alpha)
        sizes = tuple(grid_sizes) if isinstance(grid_sizes, (tuple, list)) else ()
        if not sizes or not all(
            isinstance(g, numbers.Integral) and not isinstance(g, bool) and 2 <= g <= 64 for g in sizes
        ):
            raise ValueError(
                f"grid_sizes must be a non-empty list of integers in [2, 64], got {grid_sizes!r}"
            )
        self.grid_sizes = tuple(int(g) for g in sizes)
        for name, value in (("beta", beta), ("gamma", gamma), ("eta", eta),
                            ("transport_eps", transport_eps)):
            check_number(name, value, low=0)
        self.beta, self.gamma, self.eta = float(beta), float(gamma), float(eta)
        self.sweeps, self.transport = check_integer("sweeps", sweeps, 0), bool(transport)
        self.transport_eps = float(transport_eps)
        self.value_range = check_value_range(value_range)
        if saliency_dtype not in SALIENCY_DTYPES:
            raise ValueError(f"saliency_dtype must be one of {SALIENCY_DTYPES}, got {saliency_dtype!r}")
        self.saliency_dtype = saliency_dtype
        self.seed = seed
        self._rng = make_generator(seed)

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def saliency(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Per-pixel saliency `(B, H, W)`: RMS over channels of the loss gradient w.r.t. the input."""
        with tf.GradientTape() as tape:
            tape.watch(images)
            dtype = self.saliency_dtype
            if dtype == "auto":
                dtype = "bfloat16" if fast_bfloat16(bool(self.jit_compile)) else "float32"
            with _computing_in(self.model, dtype):
                predictions = tf.cast(self.model(images, training=True), tf.float32)
            loss = self.compute_loss(x=images, y=labels, y_pred=predictions, training=False)
        grad = tape.gradient(loss, images)
        return tf.sqrt(tf.reduce_mean(tf.square(grad), axis=-1))

    def mix(self, images: tf.Tensor, labels: tf.Tensor, key: tf.Tensor | None = None):
        """PuzzleMix a batch: returns `(mixed images, soft labels, weight)`."""
        from keras_aug.core.random import Draws

        images = tf.cast(images, tf.float32)
        h, w = images.shape[1], images.shape[2]
        bad = [g for g in self.grid_sizes if h is None or w is None or h % g or w % g]
        if bad:
            raise ValueError(
                f"PuzzleMixModel: image size {h}x{w} must be divisible by every grid size; "
                f"grid_sizes={self.grid_sizes} has {bad}"
            )
        if labels.dtype.is_integer:
            classes = self.model.compute_output_shape(tuple(images.shape))[-1]
            labels = tf.one_hot(tf.reshape(labels, [-1]), classes, dtype=tf.float32)
        labels = tf.cast(labels, tf.float32)
        saliency = tf.stop_gradient(self.saliency(images, labels))
        draws = Draws(self._rng.make_seeds(1)[:, 0] if key is None else key)
        batch = tf.shape(images)[0]
        lam = draws.beta([batch], self.alpha, self.alpha)
        partner = ops.cyclic_partner(draws.uniform([batch]))
        which = draws.integers([], 0, len(self.grid_sizes))
        options = (("value_range", tuple(self.value_range)), ("beta", self.beta),
                   ("gamma", self.gamma), ("eta", self.eta), ("sweeps", self.sweeps),
                   ("transport", self.transport), ("transport_eps", self.transport_eps))
        mixed, weight = _solve_and_mix(images, saliency, lam, partner, which, self.grid_sizes,
                                       options)
        return mixed, ops.mix_labels(labels, partner, weight), weight

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None:
            raise ValueError("PuzzleMixModel needs labels: fit it on (images, labels)")
        mixed, soft, _ = self.mix(x, y)
        return super().train_step((mixed, soft) if sample_weight is None
                                  else (mixed, soft, sample_weight))

    def get_config(self):
        return {
            **super().get_config(),
            "model": keras.saving.serialize_keras_object(self.model),
            "alpha": self.alpha, "grid_sizes": self.grid_sizes, "beta": self.beta,
            "gamma": self.gamma, "eta": self.eta, "sweeps": self.sweeps,
            "transport": self.transport, "transport_eps": self.transport_eps,
            "value_range": self.value_range, "saliency_dtype": self.saliency_dtype,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)
