"""Policy layers (AutoAugment, RandAugment, TrivialAugmentWide, AugMix): per sample and fused.

Each image draws its own ops and magnitudes; `keras_aug.policies.fused.apply_op_sequence` turns
all geometric choices into one matrix and one warp per batch, and the colour choices into
per-sample parameters (identity where not chosen). See `keras_aug/policies/fused.py` for how op
order is kept.
"""
from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.core.validation import check_choice
from keras_aug.ops.geometry import INTERPOLATIONS
from keras_aug.ops.boxes import warp_boxes
from keras_aug.policies.fused import apply_op_sequence, op_sequence_matrix
from keras_aug.policies.policy import resolve_policy
from keras_aug.policies.registry import (
    AUGMIX_ALL_OPS,
    AUGMIX_OPS,
    RANDAUGMENT_OPS,
    TRIVIALAUGMENT_OPS,
    check_ops,
)

__all__ = ["AugMix", "AutoAugment", "RandAugment", "TrivialAugmentWide"]


def _check_number(name: str, value, low: float, high: float | None = None, integer=False):
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} in {bound}, got {value!r}")
    return int(value) if integer else float(value)


class _FusedPolicy(AugmentationLayer):
    """Shared plumbing: per-sample (ops, magnitudes, signs) -> one fused application."""

    op_names: tuple[str, ...] = ()
    space = "standard"

    def __init__(self, interpolation: str = "bilinear", fill_value: float | None = None,
                 jit_compile: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(jit_compile, bool):
            raise TypeError(f"jit_compile must be True or False, got {jit_compile!r}")
        # XLA makes large batches several times faster but compiling these fused graphs takes
        # seconds; for tiny images or short runs (the digits demo) a plain graph is cheaper.
        self.jit_compile = self.supports_jit = jit_compile
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)
        if fill_value is not None:
            fill_value = _check_number("fill_value", fill_value, float("-inf"))
        self.fill_value = fill_value

    @property
    def _fill(self) -> float:
        return self.value_range[0] if self.fill_value is None else self.fill_value

    def _signs_and_centers(self, shape, draws) -> dict:
        params = {"sign": tf.where(draws.bernoulli(shape, 0.5), 1.0, -1.0)}
        if "Cutout" in self.op_names:
            params["cutout_center"] = draws.uniform(list(shape) + [2])
        return params

    def _apply(self, images, params, op_names=None):
        return apply_op_sequence(
            images, params["ops"], params["magnitude"], params["sign"],
            op_names=op_names or self.op_names, space=self.space, value_range=self.value_range,
            interpolation=self.interpolation, fill_value=self._fill,
            cutout_centers=params.get("cutout_center"), xla=self.jit_compile,
        )

    def augment_images(self, images, params):
        return self._apply(images, params)

    def augment_bounding_boxes(self, boxes, params, height, width):
        # The same per-sample matrix the fused warp uses; colour ops and Cutout move no boxes.
        matrix = op_sequence_matrix(params["ops"], params["magnitude"], params["sign"],
                                    op_names=self.op_names, space=self.space, height=height,
                                    width=width)
        return warp_boxes(boxes, matrix)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation,
                "fill_value": self.fill_value, "jit_compile": self.jit_compile}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandAugment(_FusedPolicy):
    """RandAugment (Cubuk et al. 2020): each image applies `num_ops` ops drawn uniformly (with
    replacement) from `ops`, at magnitude `magnitude` on the paper's 0-10 scale.

    Per sample: every image draws its own ops, signs and (with `magnitude_std > 0`) magnitudes,
    unlike Keras' RandAugment (one choice per batch, every op computed every call). All geometric
    ops of an image are fused into one warp.

    Args:
        num_ops: ops applied in sequence per image (N), or a timm policy string such as
            `"rand-m9-n2-mstd0.5"` (keys m, n, mstd, mmax, inc; see `policies.parse_rand_spec`).
        magnitude: M in [0, magnitude_max]; m = M / 10 is mapped by `policies.registry`.
        magnitude_std: per-op Gaussian noise on M (timm's `mstd`); > 100 means uniform in [0, M].
        magnitude_max: upper clip of the noisy magnitude (timm's `mmax`, 10 by default).
        ops: registry op names to draw from; default the paper's 14 ops (torchvision's list).
        interpolation: `"bilinear"` or `"nearest"` for the warp.
        fill_value: fill for pixels warped in from outside (default `value_range[0]`, black).
        jit_compile: compile the apply step with XLA (default). False skips a compile of a few
            seconds per layer, worth it for small images and short runs.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandAugment(num_ops=2, magnitude=9, seed=0)
        >>> out = layer(tf.random.uniform([8, 64, 64, 3], 0, 255))
        >>> layer = keras_aug.layers.RandAugment("rand-m9-n2-mstd0.5")
    """

    def __init__(self, num_ops=2, magnitude: float = 9.0, magnitude_std: float = 0.0,
                 magnitude_max: float = 10.0, ops=RANDAUGMENT_OPS, **kwargs):
        if isinstance(num_ops, str):
            from keras_aug.policies.spec import parse_rand_spec

            parsed = parse_rand_spec(num_ops)
            kwargs.setdefault("p", parsed.pop("p", 1.0))
            num_ops = parsed["num_ops"]
            magnitude = parsed.get("magnitude", magnitude)
            magnitude_std = parsed.get("magnitude_std", magnitude_std)
            magnitude_max = parsed.get("magnitude_max", magnitude_max)
        super().__init__(**kwargs)
        self.num_ops = _check_number("num_ops", num_ops, 1, 16, integer=True)
        self.magnitude_max = _check_number("magnitude_max", magnitude_max, 0.0, 10.0)
        self.magnitude = _check_number("magnitude", magnitude, 0.0, self.magnitude_max)
        self.magnitude_std = _check_number("magnitude_std", magnitude_std, 0.0)
        self.ops = self.op_names = check_ops("ops", ops)

    def sample_params(self, batch_size, images, draws):
        shape = [batch_size, self.num_ops]
        ops = draws.integers(shape, 0, len(self.op_names))
        level = tf.fill(shape, self.magnitude)
        if self.magnitude_std > 100:
            level = draws.uniform(shape, 0.0, self.magnitude)
        elif self.magnitude_std > 0:
            level = level + self.magnitude_std * draws.normal(shape)
        level = tf.clip_by_value(level, 0.0, self.magnitude_max)
        return {"ops": ops, "magnitude": level / 10.0, **self._signs_and_centers(shape, draws)}

    def get_config(self):
        return {**super().get_config(), "num_ops": self.num_ops, "magnitude": self.magnitude,
                "magnitude_std": self.magnitude_std, "magnitude_max": self.magnitude_max,
                "ops": list(self.ops)}


@keras.saving.register_keras_serializable(package="keras_aug")
class TrivialAugmentWide(_FusedPolicy):
    """TrivialAugment (Müller & Hutter 2021), wide space: each image applies ONE op drawn
    uniformly from `ops` at a magnitude bin drawn uniformly from `num_magnitude_bins` (31).

    Magnitudes use the "wide" space (rotate 135°, shear 0.99, translate 32 px, enhance ±0.99,
    posterize to 2 bits), as torchvision's `TrivialAugmentWide`. Per sample, tuning-free.

    Args:
        num_magnitude_bins: number of magnitude levels (bin 0 = identity strength).
        ops: registry op names (default torchvision's 14).
        interpolation, fill_value, jit_compile: see `RandAugment`.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.TrivialAugmentWide(seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    space = "wide"

    def __init__(self, num_magnitude_bins: int = 31, ops=TRIVIALAUGMENT_OPS, **kwargs):
        super().__init__(**kwargs)
        self.num_magnitude_bins = _check_number("num_magnitude_bins", num_magnitude_bins, 2,
                                                integer=True)
        self.ops = self.op_names = check_ops("ops", ops)

    def sample_params(self, batch_size, images, draws):
        shape = [batch_size, 1]
        ops = draws.integers(shape, 0, len(self.op_names))
        bins = draws.integers(shape, 0, self.num_magnitude_bins)
        magnitude = tf.cast(bins, tf.float32) / float(self.num_magnitude_bins - 1)
        return {"ops": ops, "magnitude": magnitude, **self._signs_and_centers(shape, draws)}

    def get_config(self):
        return {**super().get_config(), "num_magnitude_bins": self.num_magnitude_bins,
                "ops": list(self.ops)}


@keras.saving.register_keras_serializable(package="keras_aug")
class AutoAugment(_FusedPolicy):
    """AutoAugment (Cubuk et al. 2019) with the published policies; each image draws its own
    sub-policy, then applies each of its steps with the step's probability.

    Args:
        policy: `"imagenet"`, `"cifar10"`, `"svhn"`, a path to a policy JSON file (see
            `keras_aug.policies.Policy`), a policy dict or a `Policy`.
        interpolation, fill_value, jit_compile: see `RandAugment`.
        p, value_range, seed: see `AugmentationLayer`.

    Levels 0-9 map to torchvision's magnitude bins (`policies.registry`). Geometry is fused into
    one warp per batch; both steps of a sub-policy keep their order exactly.

    Example:
        >>> layer = keras_aug.layers.AutoAugment("cifar10", seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, policy="imagenet", **kwargs):
        super().__init__(**kwargs)
        self.policy = resolve_policy(policy)
        self._policy_arg = policy if isinstance(policy, str) and not policy.endswith(".json") \
            else self.policy.to_dict()
        self.space = self.policy.space
        self.op_names = ("Identity",) + tuple(n for n in self.policy.op_names if n != "Identity")
        slots = self.policy.num_slots
        ops, probs, levels = [], [], []
        for sub in self.policy.sub_policies:
            pad = slots - len(sub)
            ops.append([self.op_names.index(s.op) for s in sub] + [0] * pad)
            probs.append([float(s.p) for s in sub] + [0.0] * pad)
            levels.append([float(s.magnitude or 0.0) for s in sub] + [0.0] * pad)
        self._table = (ops, probs, levels)

    def sample_params(self, batch_size, images, draws):
        ops, probs, levels = (tf.constant(t) for t in self._table)
        shape = [batch_size, self.policy.num_slots]
        which = draws.integers([batch_size], 0, len(self.policy.sub_policies))
        applied = draws.uniform(shape) < tf.gather(probs, which)
        chosen = tf.where(applied, tf.gather(ops, which), 0)  # 0 = Identity
        magnitude = tf.gather(levels, which) / float(self.policy.magnitude_bins - 1)
        return {"ops": chosen, "magnitude": magnitude, "sub_policy": which,
                **self._signs_and_centers(shape, draws)}

    def get_config(self):
        return {**super().get_config(), "policy": self._policy_arg}


@keras.saving.register_keras_serializable(package="keras_aug")
class AugMix(_FusedPolicy):
    """AugMix (Hendrycks et al. 2020): per image, `width` chains of 1-3 random ops, mixed with
    Dirichlet(alpha) weights and blended with the original by a Beta(alpha, alpha) factor.

    Every chain of every image draws its own ops, depth and magnitudes from the layer's seeded
    stream (Keras' AugMix draws one frozen chain with Python `random` at trace time). The
    `width` chains of the whole batch run as one fused batch of `B * width` images.

    Args:
        severity: 1-10; each op's level is uniform in [0.1, severity] on the 0-10 scale.
        width: number of chains mixed per image.
        depth: ops per chain; -1 draws 1-3 per chain.
        alpha: Dirichlet and Beta concentration.
        all_ops: also use Color/Contrast/Brightness/Sharpness (torchvision's default True; the
            paper leaves them out to avoid overlap with ImageNet-C corruptions).
        interpolation, fill_value, jit_compile: see `RandAugment`.
        p, value_range, seed: see `AugmentationLayer`.

    For the JSD consistency loss use `keras_aug.policies.AugMixViews(layer)` in the pipeline and
    `keras_aug.policies.JSDConsistencyLoss` as the model's loss.

    Example:
        >>> layer = keras_aug.layers.AugMix(severity=3, width=3, depth=-1, alpha=1.0, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    refuses_boxes = (
        "it blends several differently warped copies of each image, so an object appears at "
        "several places and no single box is right; use RandAugment, TrivialAugmentWide or "
        "AutoAugment for detection")

    def __init__(self, severity: int = 3, width: int = 3, depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.severity = _check_number("severity", severity, 1, 10, integer=True)
        self.width = _check_number("width", width, 1, 16, integer=True)
        if depth != -1:
            depth = _check_number("depth", depth, 1, 16, integer=True)
        self.depth = depth
        self.alpha = _check_number("alpha", alpha, 1e-3)
        if not isinstance(all_ops, bool):
            raise TypeError(f"all_ops must be True or False, got {all_ops!r}")
        self.all_ops = all_ops
        self.op_names = ("Identity",) + (AUGMIX_ALL_OPS if all_ops else AUGMIX_OPS)

    @property
    def _max_depth(self) -> int:
        return 3 if self.depth == -1 else self.depth

    def sample_params(self, batch_size, images, draws):
        chains = batch_size * self.width
        shape = [chains, self._max_depth]
        ops = draws.integers(shape, 1, len(self.op_names))
        if self.depth == -1:
            depth = draws.integers([chains, 1], 1, 4)
            ops = tf.where(tf.range(self._max_depth)[None, :] < depth, ops, 0)
        level = draws.uniform(shape, 0.1, float(self.severity))
        params = {"ops": ops, "magnitude": level / 10.0, **self._signs_and_centers(shape, draws)}
        # Dirichlet(alpha * 1_width) by stick breaking with Beta draws.
        remaining = tf.ones([batch_size])
        weights = []
        for j in range(self.width - 1):
            v = draws.beta([batch_size], self.alpha, self.alpha * (self.width - 1 - j))
            weights.append(remaining * v)
            remaining = remaining * (1.0 - v)
        weights.append(remaining)
        params["weights"] = tf.stack(weights, axis=1)
        params["mix"] = draws.beta([batch_size], self.alpha, self.alpha)
        return params

    def augment_images(self, images, params):
        chains = self._apply(tf.repeat(images, self.width, axis=0), params)
        shape = tf.shape(images)
        chains = tf.reshape(chains, tf.concat([shape[:1], [self.width], shape[1:]], 0))
        mixed = tf.einsum("bw,bwxyc->bxyc", params["weights"], chains)
        m = params["mix"][:, None, None, None]
        # convex weights that sum to 1 up to float rounding: clip the ~1e-5 overshoot
        low, high = self.value_range
        return tf.clip_by_value((1.0 - m) * images + m * mixed, low, high)

    def get_config(self):
        return {**super().get_config(), "severity": self.severity, "width": self.width,
                "depth": self.depth, "alpha": self.alpha, "all_ops": self.all_ops}
