"""Colour augmentation layers: thin per-sample layers over `keras_aug.ops.color`.

Factor arguments follow Keras' layers of the same name, so a model can swap
`keras.layers.RandomX(...)` for `keras_aug.layers.RandomX(...)`; where Keras' documented meaning
and its behaviour differ (RandomContrast samples only `[1, 1 + f]`, Solarization ignores the lower
threshold bound, RandomPosterization never draws the upper bits), these layers do what the
documentation says. The ops follow PIL's `ImageEnhance`/`ImageOps` (the reference behind
AutoAugment/RandAugment); every parameter is drawn per sample. Colour moves no pixels, so
segmentation masks and bounding boxes come back unchanged.
"""
from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.core.boxes import KeepsBoxes
from keras_aug.core.live import Live
from keras_aug.core.validation import check_range
from keras_aug.ops import color as ops

__all__ = [
    "RandomAutoContrast",
    "RandomBrightness",
    "RandomColorJitter",
    "RandomContrast",
    "RandomEqualize",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomHue",
    "RandomInvert",
    "RandomPosterize",
    "RandomSaturation",
    "RandomSharpness",
    "RandomSolarize",
]


# ----------------------------------------------------------------------- factor conventions
def brightness_range(name: str, factor) -> tuple[float, float]:
    """Keras' brightness factor: `f` -> `(-f, f)`, or a `(min, max)` pair, within [-1, 1]."""
    return check_range(name, factor, symmetric=True, low=-1.0, high=1.0)


def contrast_range(name: str, factor) -> tuple[float, float]:
    """Keras' contrast factor -> the `(min, max)` contrast multiplier.

    `f` -> `[1 - f, 1 + f]`; a pair `(lower, upper)` -> `[1 - lower, 1 + upper]` (Keras' documented
    meaning); both non-negative and `lower <= 1`.
    """
    if isinstance(factor, numbers.Real) and not isinstance(factor, bool):
        lower = upper = factor
    elif isinstance(factor, (tuple, list)) and len(factor) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in factor
    ):
        lower, upper = factor
    else:
        raise ValueError(f"{name} must be a number or a (lower, upper) pair, got {factor!r}")
    if lower < 0 or upper < 0 or lower > 1:
        raise ValueError(
            f"{name} must be non-negative with lower <= 1 (contrast is drawn from "
            f"[1 - lower, 1 + upper]), got {factor!r}"
        )
    return (1.0 - float(lower), 1.0 + float(upper))


def unit_range(name: str, factor) -> tuple[float, float]:
    """Keras' [0, 1] factors (saturation, hue, sharpness): `f` -> `(0, f)`, or a `(min, max)` pair."""
    return check_range(name, factor, low=0.0, high=1.0)


def _saturation_factor(draws, batch_size, bounds):
    """Keras' saturation convention: k in [0, 1] -> PIL factor k / (1 - k); 0.5 is the identity."""
    k = draws.uniform([batch_size], bounds[0], bounds[1])
    return k / (1.0 - k + 1e-7)


def _hue_delta(draws, batch_size, bounds):
    """Keras' hue convention: magnitude in `bounds`, random sign, half a turn at 1."""
    magnitude = draws.uniform([batch_size], bounds[0], bounds[1])
    sign = tf.where(draws.bernoulli([batch_size], 0.5), 1.0, -1.0)
    return 0.5 * sign * magnitude


# ----------------------------------------------------------------------- enhance layers
@keras.saving.register_keras_serializable(package="keras_aug")
class RandomBrightness(KeepsBoxes, AugmentationLayer):
    """Scale brightness by `1 + delta`, delta drawn per sample from `factor` (PIL Brightness).

    Same `factor` argument as Keras' RandomBrightness, but multiplicative (as PIL, torchvision and
    AutoAugment): -1 gives black as in Keras, +1 doubles the brightness (Keras adds a full range).

    Args:
        factor: `f` -> delta in `[-f, f]`, or a `(min, max)` pair, within [-1, 1].
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomBrightness(0.2, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    factor = Live(brightness_range, identity=0.0)

    def __init__(self, factor=0.2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        bounds = self.live("factor")
        return {"factor": 1.0 + draws.uniform([batch_size], bounds[0], bounds[1])}

    def augment_images(self, images, params):
        return ops.brightness(images, params["factor"], self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomContrast(KeepsBoxes, AugmentationLayer):
    """Blend each image with its mean grey by a per-sample factor (PIL Contrast).

    Unlike Keras (per-channel mean), the grey is the mean luma, as in PIL/torchvision, so colours
    do not shift. Keras 3.15's RandomContrast(f) draws only from `[1, 1 + f]`; this layer draws
    from `[1 - f, 1 + f]` as Keras documents.

    Args:
        factor: `f` -> contrast in `[1 - f, 1 + f]`; `(lower, upper)` -> `[1 - lower, 1 + upper]`.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomContrast(0.3, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    channels = (1, 3)
    factor = Live(contrast_range, identity=1.0)

    def __init__(self, factor=0.2, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        bounds = self.live("factor")
        return {"factor": draws.uniform([batch_size], bounds[0], bounds[1])}

    def augment_images(self, images, params):
        return ops.contrast(images, params["factor"], self.value_range)

    def get_config(self):
        lo, hi = self.factor
        return {**super().get_config(), "factor": (1.0 - lo, hi - 1.0)}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomSaturation(KeepsBoxes, AugmentationLayer):
    """Blend each RGB image with its grayscale by a per-sample factor (PIL Color).

    Keras' convention: `k` in [0, 1] becomes the PIL factor `k / (1 - k)`: 0 is grayscale, 0.5
    the identity, 1 fully saturated. A single number `f` means `(0, f)` (as in Keras, so `f < 0.5`
    only desaturates); pass a pair such as `(0.3, 0.7)` for both directions.

    Args:
        factor: `f` -> `(0, f)`, or a `(min, max)` pair within [0, 1].
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomSaturation((0.3, 0.7), seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    channels = (3,)
    factor = Live(unit_range, identity=0.5)

    def __init__(self, factor=(0.3, 0.7), **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        return {"factor": _saturation_factor(draws, batch_size, self.live("factor"))}

    def augment_images(self, images, params):
        return ops.saturation(images, params["factor"], self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomHue(KeepsBoxes, AugmentationLayer):
    """Rotate the hue of each RGB image by a per-sample amount (exact HSV rotation).

    Keras' convention: a magnitude drawn from `factor` with a random sign, 1.0 = half a turn.

    Args:
        factor: `f` -> magnitude in `(0, f)`, or a `(min, max)` pair within [0, 1].
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomHue(0.2, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    channels = (3,)
    factor = Live(unit_range, identity=0.0)

    def __init__(self, factor=0.1, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        return {"delta": _hue_delta(draws, batch_size, self.live("factor"))}

    def augment_images(self, images, params):
        return ops.hue(images, params["delta"], self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomSharpness(KeepsBoxes, AugmentationLayer):
    """Blend with PIL's SMOOTH-filtered image by a per-sample factor (PIL Sharpness).

    Keras' convention: `k` in [0, 1] is the PIL factor `2k`: 0 smoothed, 0.5 identity, 1 sharper.

    Args:
        factor: `f` -> `(0, f)`, or a `(min, max)` pair within [0, 1].
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomSharpness((0.25, 0.75), seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    factor = Live(unit_range, identity=0.5)

    def __init__(self, factor=(0.25, 0.75), **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        bounds = self.live("factor")
        return {"factor": 2.0 * draws.uniform([batch_size], bounds[0], bounds[1])}

    def augment_images(self, images, params):
        return ops.sharpness(images, params["factor"], self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomColorJitter(KeepsBoxes, AugmentationLayer):
    """Brightness, contrast, saturation and hue with per-sample factors, fused in one pass.

    Order: fixed, brightness -> contrast -> saturation -> hue (Keras' order). The first three
    are linear maps that commute (apart from intermediate clipping), so a random order would only
    move where clipping happens; fixing it lets them fuse into one per-sample affine map of the
    pixel and its luma (`ops.color_jitter`), one read and one write of the batch, then one hue
    rotation. Each factor uses the convention of the single layer of the same name; `None`
    leaves that property unchanged. All four are live; the hue rotation (an HSV round trip) is
    compiled in only when `hue_factor` is given at construction (pass `0` to set it later).

    Args:
        value_range: first positional argument, as in Keras' RandomColorJitter.
        brightness_factor: see `RandomBrightness`.
        contrast_factor: see `RandomContrast`.
        saturation_factor: see `RandomSaturation` (0.5 is the identity).
        hue_factor: see `RandomHue`.
        p, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomColorJitter(
        ...     (0, 255), brightness_factor=0.2, contrast_factor=0.2,
        ...     saturation_factor=(0.4, 0.6), hue_factor=0.05, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    channels = (3,)
    brightness_factor = Live(brightness_range, identity=0.0, optional=True, shape=(2,))
    contrast_factor = Live(contrast_range, identity=1.0, optional=True, shape=(2,))
    saturation_factor = Live(unit_range, identity=0.5, optional=True, shape=(2,))
    hue_factor = Live(unit_range, identity=0.0, optional=True, shape=(2,))

    def __init__(
        self,
        value_range=(0, 255),
        brightness_factor=None,
        contrast_factor=None,
        saturation_factor=None,
        hue_factor=None,
        **kwargs,
    ):
        super().__init__(value_range=value_range, **kwargs)
        self._with_hue = hue_factor is not None
        self.brightness_factor = brightness_factor
        self.contrast_factor = contrast_factor
        self.saturation_factor = saturation_factor
        self.hue_factor = hue_factor

    def _check_live(self, name, value):
        if name == "hue_factor" and value is not None and not getattr(self, "_with_hue", True):
            raise ValueError(
                "hue_factor was None when this RandomColorJitter was built, so its graph has no "
                "hue step; construct it with hue_factor=0 to set the hue later")

    def sample_params(self, batch_size, images, draws):
        brightness = self.live("brightness_factor")
        contrast = self.live("contrast_factor")
        params = {
            "brightness": 1.0 + draws.uniform([batch_size], brightness[0], brightness[1]),
            "contrast": draws.uniform([batch_size], contrast[0], contrast[1]),
            "saturation": _saturation_factor(draws, batch_size, self.live("saturation_factor")),
        }
        if self._with_hue:
            params["hue"] = _hue_delta(draws, batch_size, self.live("hue_factor"))
        return params

    def augment_images(self, images, params):
        return ops.color_jitter(
            images, params["brightness"], params["contrast"], params["saturation"],
            params.get("hue"), self.value_range,
        )

    def get_config(self):
        contrast = self.contrast_factor
        if contrast is not None:
            contrast = (1.0 - contrast[0], contrast[1] - 1.0)
        return {
            **super().get_config(),
            "brightness_factor": self.brightness_factor,
            "contrast_factor": contrast,
            "saturation_factor": self.saturation_factor,
            "hue_factor": self.hue_factor,
        }


# ----------------------------------------------------------------------- point ops (ImageOps)
@keras.saving.register_keras_serializable(package="keras_aug")
class RandomGrayscale(KeepsBoxes, AugmentationLayer):
    """Convert images to grayscale (kept as 3 channels) with probability `p` per sample.

    Keras' RandomGrayscale(factor=q) is `p=q` here.

    Args:
        p: per-sample probability (0.5 by default, Keras' default).
        value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomGrayscale(p=0.2, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    channels = (1, 3, 4)

    def __init__(self, p: float = 0.5, **kwargs):
        super().__init__(p=p, **kwargs)

    def augment_images(self, images, params):
        return ops.grayscale(images, self.value_range)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomInvert(KeepsBoxes, AugmentationLayer):
    """Invert images (`high + low - x`) with probability `p` per sample.

    Args:
        p: per-sample probability (0.5 by default).
        value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomInvert(p=0.5, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def __init__(self, p: float = 0.5, **kwargs):
        super().__init__(p=p, **kwargs)

    def augment_images(self, images, params):
        return ops.invert(images, self.value_range)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomEqualize(KeepsBoxes, AugmentationLayer):
    """Histogram-equalize each channel of each image (PIL ImageOps.equalize) with probability `p`.

    Per sample, vectorized (one batched histogram); works in Functional/Sequential models and
    honours `training` (Keras' Equalization does neither).

    Args:
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomEqualize(p=0.5, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def augment_images(self, images, params):
        return ops.equalize(images, self.value_range)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomAutoContrast(KeepsBoxes, AugmentationLayer):
    """Stretch each channel of each image to the full range (PIL ImageOps.autocontrast), with
    probability `p` per sample; identity when `training=False` (Keras' AutoContrast ignores it).

    Args:
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomAutoContrast(p=0.5, seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    def augment_images(self, images, params):
        return ops.autocontrast(images, self.value_range)


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomSolarize(KeepsBoxes, AugmentationLayer):
    """Add a per-sample amount, then invert pixels at or above a per-sample threshold.

    Keras' Solarization arguments, with both bounds honoured (Keras 3.15 draws the threshold
    from `[lower, upper * 255]`, ignoring the lower bound's scale). Both factors are fractions
    of the value range: `f` -> `(0, f)`, or a `(min, max)` pair within [0, 1]. A threshold of 1
    still inverts pixels equal to `high`; the default threshold is `(0.5, 1.0)` (PIL/AutoAugment
    use 128, i.e. 0.5), where Keras' default 0 inverts everything.

    Args:
        addition_factor: amount added before thresholding (clipped to the range).
        threshold_factor: threshold; pixels `>= low + t * (high - low)` are inverted.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomSolarize(threshold_factor=(0.4, 0.6), seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    addition_factor = Live(unit_range, identity=0.0)
    # identity: a threshold just above the range (1.0 still inverts pixels equal to `high`)
    threshold_factor = Live(unit_range, identity=1.001)

    def __init__(self, addition_factor=0.0, threshold_factor=(0.5, 1.0), **kwargs):
        super().__init__(**kwargs)
        self.addition_factor = addition_factor
        self.threshold_factor = threshold_factor

    def sample_params(self, batch_size, images, draws):
        low, high = self.value_range
        span = high - low
        addition, threshold = self.live("addition_factor"), self.live("threshold_factor")
        return {
            "addition": span * draws.uniform([batch_size], addition[0], addition[1]),
            "threshold": low + span * draws.uniform([batch_size], threshold[0], threshold[1]),
        }

    def augment_images(self, images, params):
        added = tf.clip_by_value(images + params["addition"][:, None, None, None], *self.value_range)
        return ops.solarize(added, params["threshold"], self.value_range)

    def get_config(self):
        return {
            **super().get_config(),
            "addition_factor": self.addition_factor,
            "threshold_factor": self.threshold_factor,
        }


def _check_bits(name: str, factor) -> tuple[int, int]:
    if isinstance(factor, numbers.Integral) and not isinstance(factor, bool):
        factor = (int(factor), int(factor))
    if not (
        isinstance(factor, (tuple, list))
        and len(factor) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in factor)
        and 1 <= factor[0] <= factor[1] <= 8
    ):
        raise ValueError(
            f"{name} must be an integer number of bits in [1, 8] or a (min, max) pair of them "
            f"with min <= max, got {factor!r}"
        )
    return (int(factor[0]), int(factor[1]))


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomPosterize(KeepsBoxes, AugmentationLayer):
    """Keep the top `bits` of each 8-bit level, bits drawn per sample (PIL ImageOps.posterize).

    Args:
        factor: bits to keep, an integer in [1, 8] (fixed) or an inclusive `(min, max)` pair
            (Keras' RandomPosterization never draws its upper bound).
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomPosterize((4, 8), seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    factor = Live(lambda name, v: _check_bits(name, v), identity=8.0)

    def __init__(self, factor=(4, 8), **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def sample_params(self, batch_size, images, draws):
        bounds = tf.round(self.live("factor"))  # strength moves the bounds toward 8 bits
        return {"bits": draws.integers([batch_size], bounds[0], bounds[1] + 1)}

    def augment_images(self, images, params):
        return ops.posterize(images, params["bits"], self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="keras_aug")
class RandomGaussianBlur(KeepsBoxes, AugmentationLayer):
    """Gaussian blur with a per-sample sigma (separable kernel, reflected borders).

    Keras' RandomGaussianBlur draws one sigma per batch and uses `factor` as a probability range;
    here `p` is the probability and sigma is drawn per sample.

    Args:
        sigma: `s` -> `(0, s)`, or a `(min, max)` pair, non-negative.
        kernel_size: odd integer; `None` covers 3 sigma of the largest sigma.
        p, value_range, seed: see `AugmentationLayer`.

    Example:
        >>> layer = keras_aug.layers.RandomGaussianBlur(sigma=(0.1, 2.0), seed=0)
        >>> out = layer(tf.random.uniform([8, 32, 32, 3], 0, 255))
    """

    sigma = Live(lambda name, v: check_range(name, v, low=0.0), identity=0.0)

    def __init__(self, sigma=(0.1, 2.0), kernel_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self._auto_kernel = kernel_size is None
        if kernel_size is None:
            kernel_size = ops.gaussian_kernel_size(max(check_range("sigma", sigma, low=0.0)[1],
                                                       0.01))
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) or (
            kernel_size < 1 or kernel_size % 2 == 0
        ):
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        self.kernel_size = int(kernel_size)
        self.sigma = sigma

    def _check_live(self, name, value):
        # The kernel is static (XLA); a larger sigma would be silently truncated.
        if name == "sigma" and self._auto_kernel and (
            ops.gaussian_kernel_size(max(value[1], 0.01)) > self.kernel_size
        ):
            raise ValueError(
                f"sigma={value!r} needs a kernel larger than this layer's kernel_size="
                f"{self.kernel_size} (sized for the sigma it was built with); construct it with "
                f"the largest sigma you will set, or pass kernel_size")

    def sample_params(self, batch_size, images, draws):
        bounds = self.live("sigma")
        return {"sigma": draws.uniform([batch_size], bounds[0], bounds[1])}

    def augment_images(self, images, params):
        return ops.gaussian_blur(images, params["sigma"], self.value_range, self.kernel_size)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "kernel_size": self.kernel_size}
