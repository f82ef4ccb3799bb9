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
from keras_aug.core.live import Live
from keras_aug.core.validation import check_choice
from keras_aug.ops.geometry import INTERPOLATIONS
from keras_aug.ops.boxes import warp_boxes
from keras_aug.policies.fused import apply_op_sequence, op_sequence_matrix
from keras_aug.policies.policy import resolve_policy
from keras_aug.policies.registry import (
    OPS,
    AUGMIX_ALL_OPS,
    AUGMIX_OPS,
    RANDAUGMENT_OPS,
    TRIVIALAUGMENT_OPS,
    check_ops,
)

__all__ = ["AugMix", "AutoAugment", "RandAugment", "TrivialAugmentWide"]


def _live_number(low: float, high: float | None = None, integer: bool = False) -> Live:
    return Live(lambda name, value: _check_number(name, value, low, high, integer))


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
    strength_scales_p = False  # strength scales every op's magnitude (see _apply)

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

    @property
    def _executor_names(self) -> tuple[str, ...]:
        """The op names the fused executor indexes: `op_names`, plus a trailing Identity where
        they lack one (never drawn; the op that `p` folds a left-out sample into)."""
        names = tuple(self.op_names)
        return names if "Identity" in names else names + ("Identity",)

    def fold_p(self, params, apply):
        """A sample `p` leaves out runs Identity in every slot: no warp and no costly op for it,
        where a select would compute its ops and discard them."""
        ops = params["ops"]
        rows = tf.shape(ops)[0] // tf.shape(apply)[0]  # AugMix: `width` chains per image
        keep = tf.repeat(apply, rows)[:, None]
        identity = tf.constant(self._executor_names.index("Identity"), ops.dtype)
        return {**params, "ops": tf.where(keep, ops, identity)}

    def _magnitude(self, params) -> tf.Tensor:
        """The magnitudes the ops run at: the sampled ones scaled by the live `strength`."""
        return params["magnitude"] * self.live("strength")

    def _apply(self, images, params):
        return apply_op_sequence(
            images, params["ops"], self._magnitude(params), params["sign"],
            op_names=self._executor_names, space=self.space, value_range=self.value_range,
            interpolation=self.interpolation, fill_value=self._fill,
            cutout_centers=params.get("cutout_center"), xla=self.jit_compile,
        )

    def augment_images(self, images, params):
        return self._apply(images, params)

    def augment_bounding_boxes(self, boxes, params, height, width):
        # The same per-sample matrix the fused warp uses; colour ops and Cutout move no boxes.
        matrix = op_sequence_matrix(params["ops"], self._magnitude(params), params["sign"],
                                    op_names=self._executor_names, space=self.space, height=height,
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

    magnitude_max = _live_number(0.0, 10.0)
    magnitude = _live_number(0.0, 10.0)
    magnitude_std = _live_number(0.0)

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
        self.magnitude_max = magnitude_max
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.ops = self.op_names = check_ops("ops", ops)

    def _check_live(self, name, value):
        magnitude, top = getattr(self, "magnitude", None), getattr(self, "magnitude_max", None)
        if name == "magnitude" and top is not None and value > top:
            raise ValueError(f"magnitude must be in [0, magnitude_max={top}], got {value!r}")
        if name == "magnitude_max" and magnitude is not None and magnitude > value:
            raise ValueError(f"magnitude_max must be >= magnitude={magnitude}, got {value!r}")

    def sample_params(self, batch_size, images, draws):
        shape = [batch_size, self.num_ops]
        ops = draws.integers(shape, 0, len(self.op_names))
        magnitude, std = self.live("magnitude"), self.live("magnitude_std")
        noisy = magnitude + std * draws.normal(shape)
        uniform = draws.uniform(shape, 0.0, magnitude)  # timm: mstd > 100 means uniform [0, M]
        level = tf.where(std > 100, uniform, tf.where(std > 0, noisy, magnitude))
        level = tf.clip_by_value(level, 0.0, self.live("magnitude_max"))
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
    num_magnitude_bins = _live_number(2, integer=True)

    def __init__(self, num_magnitude_bins: int = 31, ops=TRIVIALAUGMENT_OPS, **kwargs):
        super().__init__(**kwargs)
        self.num_magnitude_bins = num_magnitude_bins
        self.ops = self.op_names = check_ops("ops", ops)

    def sample_params(self, batch_size, images, draws):
        shape = [batch_size, 1]
        ops = draws.integers(shape, 0, len(self.op_names))
        num_bins = self.live("num_magnitude_bins")
        bins = draws.integers(shape, 0, num_bins)
        magnitude = tf.cast(bins, tf.float32) / (num_bins - 1.0)
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
        ops: registry op names a policy assigned later may use (default: the policy's own ops;
            `"all"`: every op of the registry, at some cost per batch).
        interpolation, fill_value, jit_compile: see `RandAugment`.
        p, value_range, seed: see `AugmentationLayer`.

    Levels 0-9 map to torchvision's magnitude bins (`policies.registry`). Geometry is fused into
    one warp per batch; both steps of a sub-policy keep their order exactly.

    The policy is a tensor table read in-graph: `layer.policy = other` with the same number of
    sub-policies and steps, the same space and ops within `ops` takes effect at the next batch
    with no retrace or recompilation (what a policy search does thousands of times).

    Example:
        >>> layer = keras_aug.layers.AutoAugment("cifar10", seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    _table_ops = Live(lambda name, v: v, dtype=tf.int32)
    _table_probs = Live(lambda name, v: v)
    _table_levels = Live(lambda name, v: v)  # normalized to [0, 1]

    def __init__(self, policy="imagenet", ops=None, **kwargs):
        super().__init__(**kwargs)
        first = resolve_policy(policy)
        self.space = first.space
        if ops is None:
            names = first.op_names
        elif ops == "all":
            names = tuple(OPS)
        else:
            names = check_ops("ops", ops)
        self._ops_arg = None if ops is None else (ops if ops == "all" else list(names))
        self.op_names = ("Identity",) + tuple(n for n in names if n != "Identity")
        self.policy = policy

    @property
    def policy(self):
        """The current `Policy`; assign a name, path, dict or `Policy` of the same shape."""
        return self._policy

    @policy.setter
    def policy(self, policy) -> None:
        new = resolve_policy(policy)
        if new.space != self.space:
            raise ValueError(f"policy: this layer was built for the {self.space!r} magnitude "
                             f"space, got a policy in {new.space!r}")
        missing = sorted(set(new.op_names) - set(self.op_names))
        if missing:
            raise ValueError(f"policy uses ops {missing} outside this layer's ops "
                             f"{list(self.op_names[1:])}; construct it with ops= covering them "
                             f"(or ops='all')")
        old = self.__dict__.get("_policy")
        if old is not None and (len(new.sub_policies), new.num_slots) != (
                len(old.sub_policies), old.num_slots):
            raise ValueError(
                f"policy must keep the shape this layer was built with: {len(old.sub_policies)} "
                f"sub-policies of {old.num_slots} steps, got {len(new.sub_policies)} of "
                f"{new.num_slots}; construct a new AutoAugment for another shape")
        slots = new.num_slots
        ops, probs, levels = [], [], []
        for sub in new.sub_policies:
            pad = slots - len(sub)
            ops.append([self.op_names.index(s.op) for s in sub] + [0] * pad)
            probs.append([float(s.p) for s in sub] + [0.0] * pad)
            levels.append([float(s.magnitude or 0.0) / (new.magnitude_bins - 1) for s in sub]
                          + [0.0] * pad)
        self._table_ops, self._table_probs, self._table_levels = ops, probs, levels
        self.__dict__["_policy"] = new
        self.__dict__["_policy_arg"] = policy if isinstance(policy, str) and not \
            policy.endswith(".json") else new.to_dict()

    def sample_params(self, batch_size, images, draws):
        ops, probs = self.live("_table_ops"), self.live("_table_probs")
        levels = self.live("_table_levels")
        shape = [batch_size, ops.shape[1]]
        which = draws.integers([batch_size], 0, tf.shape(ops)[0])
        applied = draws.uniform(shape) < tf.gather(probs, which)
        chosen = tf.where(applied, tf.gather(ops, which), 0)  # 0 = Identity
        magnitude = tf.gather(levels, which)
        return {"ops": chosen, "magnitude": magnitude, "sub_policy": which,
                **self._signs_and_centers(shape, draws)}

    def get_config(self):
        config = {**super().get_config(), "policy": self._policy_arg}
        if self._ops_arg is not None:
            config["ops"] = self._ops_arg
        return config


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

    severity = _live_number(1, 10, integer=True)
    alpha = _live_number(1e-3)

    def __init__(self, severity: int = 3, width: int = 3, depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.severity = severity
        self.width = _check_number("width", width, 1, 16, integer=True)
        if depth != -1:
            depth = _check_number("depth", depth, 1, 16, integer=True)
        self.depth = depth
        self.alpha = alpha
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
        level = draws.uniform(shape, 0.1, self.live("severity"))
        alpha = self.live("alpha")
        params = {"ops": ops, "magnitude": level / 10.0, **self._signs_and_centers(shape, draws)}
        # Dirichlet(alpha * 1_width) by stick breaking with Beta draws.
        remaining = tf.ones([batch_size])
        weights = []
        for j in range(self.width - 1):
            v = draws.beta([batch_size], alpha, alpha * (self.width - 1 - j))
            weights.append(remaining * v)
            remaining = remaining * (1.0 - v)
        weights.append(remaining)
        params["weights"] = tf.stack(weights, axis=1)
        params["mix"] = draws.beta([batch_size], alpha, alpha)
        return params

    def fold_p(self, params, apply):
        """Left-out samples run Identity chains (see `_FusedPolicy.fold_p`) and keep their input
        (a select after the blend, which XLA fuses into it: the chains are the costly part)."""
        return {**super().fold_p(params, apply), "keep": apply}

    def augment_images(self, images, params):
        chains = self._apply(tf.repeat(images, self.width, axis=0), params)
        shape = tf.shape(images)
        chains = tf.reshape(chains, tf.concat([shape[:1], [self.width], shape[1:]], 0))
        mixed = tf.einsum("bw,bwxyc->bxyc", params["weights"], chains)
        m = params["mix"][:, None, None, None]
        # convex weights that sum to 1 up to float rounding: clip the ~1e-5 overshoot
        low, high = self.value_range
        out = tf.clip_by_value((1.0 - m) * images + m * mixed, low, high)
        if "keep" in params:  # see fold_p
            out = tf.where(params["keep"][:, None, None, None], out, images)
        return out

    def get_config(self):
        return {**super().get_config(), "severity": self.severity, "width": self.width,
                "depth": self.depth, "alpha": self.alpha, "all_ops": self.all_ops}
