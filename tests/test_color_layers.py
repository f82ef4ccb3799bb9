"""Colour layers (keras_aug.layers.color): invariants, conventions, Keras-defect regressions, errors.

The ops themselves are checked against PIL in tests/test_color_ops.py; the engine's generic
behaviour (input structures, NaN, parallel map, export) in tests/test_engine.py.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aug import layers as L
from keras_aug.core import Draws

JITTER = dict(brightness_factor=0.3, contrast_factor=0.3, saturation_factor=(0.2, 0.8), hue_factor=0.2)

# (class, kwargs that augment visibly, kwargs that are the identity; None if the layer has none)
LAYERS = [
    (L.RandomBrightness, {"factor": 0.4}, {"factor": 0.0}),
    (L.RandomContrast, {"factor": 0.5}, {"factor": 0.0}),
    (L.RandomSaturation, {"factor": (0.1, 0.9)}, {"factor": (0.5, 0.5)}),
    (L.RandomHue, {"factor": 0.5}, {"factor": 0.0}),
    (L.RandomSharpness, {"factor": (0.0, 1.0)}, {"factor": (0.5, 0.5)}),
    (L.RandomColorJitter, JITTER, {}),
    (L.RandomGrayscale, {"p": 0.5}, {"p": 0.0}),
    (L.RandomInvert, {"p": 0.5}, {"p": 0.0}),
    (L.RandomSolarize, {"addition_factor": 0.2, "threshold_factor": (0.3, 0.9)},
     {"threshold_factor": (1.0, 1.0)}),
    (L.RandomPosterize, {"factor": (1, 7)}, {"factor": 8}),
    (L.RandomEqualize, {"p": 0.5}, {"p": 0.0}),
    (L.RandomAutoContrast, {"p": 0.5}, {"p": 0.0}),
    (L.RandomGaussianBlur, {"sigma": (0.3, 1.0)}, {"sigma": 0.0}),
]
IDS = [cls.__name__ for cls, _, _ in LAYERS]


def photo_batch(n=8, size=24, seed=0):
    """n copies of one smooth colourful uint8 image (identical images expose per-sample params).

    24x24: PIL's equalize leaves images of under ~255 pixels per channel unchanged."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    image = np.stack([40 + 150 * xx, 30 + 180 * yy, 200 - 120 * xx * yy], -1)
    image = image + rng.normal(0, 8, image.shape)
    return np.repeat(np.clip(image, 0, 255).astype(np.uint8)[None], n, axis=0)


def no_xla(layer):
    """Skip XLA compilation for instances that only check values (compiling costs ~1 s each)."""
    layer.jit_compile = False
    return layer


@pytest.mark.parametrize("cls, kwargs, identity", LAYERS, ids=IDS)
def test_layer_invariants(cls, kwargs, identity):
    x8 = photo_batch()
    xf = tf.constant(x8, tf.float32)
    layer = cls(seed=3, **kwargs)  # compiled with XLA, as layers run by default
    out = np.asarray(layer(xf))
    assert out.dtype == np.float32 and out.shape == x8.shape
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert len({o.tobytes() for o in out}) > 1  # identical inputs, per-sample parameters
    assert np.array_equal(layer(xf, training=False), xf)
    # a fixed key fixes the result; XLA and plain TensorFlow agree
    key, other = tf.constant([5, 6], tf.int64), tf.constant([5, 7], tf.int64)
    compiled = layer.augment({"images": xf}, key)["images"].numpy()
    assert np.array_equal(compiled, layer.augment({"images": xf}, key)["images"].numpy())
    assert not np.array_equal(compiled, layer.augment({"images": xf}, other)["images"].numpy())
    plain = no_xla(cls(seed=3, **kwargs))
    np.testing.assert_allclose(np.asarray(plain(xf)), out, atol=1e-3)  # same seed, same sequence
    np.testing.assert_allclose(plain.augment({"images": xf}, key)["images"].numpy(), compiled, atol=1e-3)
    # value_range (0, 1) is (0, 255) scaled
    unit = no_xla(cls(value_range=(0, 1), **kwargs))
    scaled = unit.augment({"images": xf / 255.0}, key)["images"].numpy() * 255.0
    np.testing.assert_allclose(scaled, compiled, atol=0.05)
    # uint8 in -> uint8 out (Keras returns float32 from most layers, uint8 from RandomBrightness)
    out8 = plain(x8)
    assert out8.dtype == tf.uint8 and out8.shape == x8.shape
    # identity at zero magnitude
    np.testing.assert_allclose(np.asarray(no_xla(cls(seed=0, **identity))(xf)), xf, atol=1e-3)


@pytest.mark.slow
def test_tf_data_and_model_fit():
    x = photo_batch(n=32, size=16)
    y = np.arange(32) % 2
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    jitter, equalize = L.RandomColorJitter(**JITTER, seed=0), L.RandomEqualize(p=0.5, seed=0)
    mapped = ds.map(lambda a, b: (equalize(jitter(a)), b), num_parallel_calls=tf.data.AUTOTUNE)
    xb, yb = next(iter(mapped))
    assert xb.dtype == tf.uint8 and not np.array_equal(xb, x[:8]) and np.array_equal(yb, y[:8])
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Rescaling(1 / 255.0)(L.RandomSolarize(seed=0)(inputs))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    history = model.fit(mapped, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    xf = x.astype(np.float32)
    plain = np.asarray(model.layers[-1](model.layers[-2](model.layers[-3](xf))))  # no RandomSolarize
    np.testing.assert_allclose(model.predict(xf, verbose=0), plain, atol=1e-5)  # served = identity


# ------------------------------------------------------------------ conventions and Keras defects
def draws(layer, key_param):
    x = tf.constant(photo_batch(n=256, size=4), tf.float32)
    return layer.sample_params(256, x, Draws(tf.constant([1, 2])))[key_param]


def test_factor_conventions_honour_both_bounds():
    contrast = draws(L.RandomContrast(0.5), "factor").numpy()
    assert contrast.min() < 0.6 and contrast.max() > 1.4  # Keras 3.15 draws only [1, 1.5]
    assert contrast.min() >= 0.5 and contrast.max() <= 1.5
    contrast = draws(L.RandomContrast((0.2, 0.6)), "factor").numpy()
    assert contrast.min() >= 0.8 and contrast.max() <= 1.6
    bright = draws(L.RandomBrightness((-0.1, 0.3)), "factor").numpy()
    assert bright.min() >= 0.9 and bright.max() <= 1.3 and bright.min() < 0.95
    sat = draws(L.RandomSaturation((0.5, 0.5)), "factor").numpy()
    np.testing.assert_allclose(sat, 1.0, atol=1e-5)  # Keras' 0.5 = identity
    hue = draws(L.RandomHue((0.2, 0.4)), "delta").numpy()
    assert np.all((np.abs(hue) >= 0.1 - 1e-6) & (np.abs(hue) <= 0.2 + 1e-6)) and (hue < 0).any() and (hue > 0).any()
    bits = draws(L.RandomPosterize((3, 5)), "bits").numpy()
    assert set(bits.tolist()) == {3, 4, 5}  # inclusive: Keras never draws its upper bound
    sharp = draws(L.RandomSharpness((0.5, 1.0)), "factor").numpy()
    assert sharp.min() >= 1.0 and sharp.max() <= 2.0


def test_solarize_threshold_lower_bound_is_honoured():
    """Keras' Solarization draws thresholds from [lower, upper*255]: low pixels get inverted."""
    ramp = np.tile(np.arange(256, dtype=np.float32)[None, :, None, None], (64, 1, 1, 3))
    out = np.asarray(L.RandomSolarize(threshold_factor=(0.6, 0.8), seed=0)(ramp))
    below = np.arange(256) < 0.6 * 255
    assert np.array_equal(out[:, below], ramp[:, below])  # never inverted below 0.6 * 255
    assert np.all(out[:, 205:] == 255 - ramp[:, 205:])  # always inverted above 0.8 * 255
    thresholds = (out != ramp).argmax(axis=1)[:, 0, 0]
    assert thresholds.min() >= 153 and len(np.unique(thresholds)) > 5  # per-sample thresholds


def test_equalize_and_autocontrast_per_sample_inside_models():
    ramp = (np.arange(576) % 180 + 30).astype(np.float32).reshape(1, 24, 24, 1)
    x = np.repeat(np.concatenate([ramp, ramp * 0.5, ramp * 0.3 + 100], axis=-1), 32, axis=0)
    for cls in (L.RandomEqualize, L.RandomAutoContrast):
        out = np.asarray(cls(p=0.5, seed=1)(x))
        changed = np.any(out != x, axis=(1, 2, 3))
        assert 0 < changed.sum() < 32  # decided per image, not per batch
        inputs = keras.Input((24, 24, 3))
        model = keras.Model(inputs, cls(seed=0)(inputs))  # Keras' Equalization fails here
        np.testing.assert_array_equal(model.predict(x, verbose=0), x)  # and AutoContrast stays on
        assert not np.array_equal(np.asarray(model(x, training=True)), x)
        seq = keras.Sequential([keras.Input((24, 24, 3)), cls(seed=0), keras.layers.Flatten()])
        np.testing.assert_array_equal(seq.predict(x, verbose=0), x.reshape(32, -1))


def test_grayscale_keeps_channels_and_rgba_alpha():
    x = photo_batch(n=4).astype(np.float32)
    out = np.asarray(L.RandomGrayscale(p=1.0)(x))
    assert out.shape == x.shape and np.allclose(out[..., 0], out[..., 1]) and np.allclose(out[..., 1], out[..., 2])
    rgba = np.concatenate([x, np.full(x.shape[:3] + (1,), 9.0, np.float32)], -1)
    assert np.all(np.asarray(L.RandomGrayscale(p=1.0)(rgba))[..., 3] == 9.0)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: L.RandomBrightness(-0.2), ValueError, "factor must be non-negative when given as one number, got -0.2"),
        (lambda: L.RandomBrightness((0.5, 0.2)), ValueError, r"factor must be \(min, max\) with min <= max, got \(0.5, 0.2\)"),
        (lambda: L.RandomBrightness((-2, 0)), ValueError, r"factor must lie within \[-1.0, 1.0\], got \(-2, 0\)"),
        (lambda: L.RandomContrast(-0.1), ValueError, r"factor must be non-negative with lower <= 1 .* got -0.1"),
        (lambda: L.RandomContrast((1.5, 0.2)), ValueError, r"factor must be non-negative with lower <= 1 .* got \(1.5, 0.2\)"),
        (lambda: L.RandomContrast("high"), ValueError, "factor must be a number or a .* pair, got 'high'"),
        (lambda: L.RandomSaturation(1.5), ValueError, r"factor must lie within \[0.0, 1.0\], got 1.5"),
        (lambda: L.RandomHue((0.6, 0.1)), ValueError, r"factor must be \(min, max\) with min <= max"),
        (lambda: L.RandomSharpness((-0.1, 0.5)), ValueError, r"factor must lie within \[0.0, 1.0\]"),
        (lambda: L.RandomColorJitter(hue_factor=2.0), ValueError, r"hue_factor must lie within \[0.0, 1.0\], got 2.0"),
        (lambda: L.RandomColorJitter(contrast_factor=-1), ValueError, "contrast_factor must be non-negative"),
        (lambda: L.RandomSolarize(threshold_factor=(0.8, 0.2)), ValueError, r"threshold_factor must be \(min, max\) with min <= max"),
        (lambda: L.RandomSolarize(addition_factor=1.5), ValueError, r"addition_factor must lie within \[0.0, 1.0\], got 1.5"),
        (lambda: L.RandomPosterize(0), ValueError, r"factor must be an integer number of bits in \[1, 8\] .* got \(0, 0\)"),
        (lambda: L.RandomPosterize((6, 4)), ValueError, r"factor must be an integer number of bits .* got \(6, 4\)"),
        (lambda: L.RandomPosterize(2.5), ValueError, "factor must be an integer number of bits .* got 2.5"),
        (lambda: L.RandomGaussianBlur(sigma=-1.0), ValueError, "sigma must be non-negative when given as one number, got -1.0"),
        (lambda: L.RandomGaussianBlur(kernel_size=4), ValueError, "kernel_size must be a positive odd integer, got 4"),
        (lambda: L.RandomGrayscale(p=1.5), ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
        (lambda: L.RandomInvert(value_range=(1, 0)), ValueError, "value_range must have low < high, got"),
        (lambda: L.RandomEqualize(value_range=255), ValueError, r"value_range must be a pair \(low, high\)"),
    ],
)
def test_bad_arguments(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("cls", [L.RandomSaturation, L.RandomHue, L.RandomColorJitter])
def test_rgb_layers_reject_other_channel_counts(cls):
    with pytest.raises(ValueError, match="images must have 3 channels, got 1"):
        cls()(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="images must have 3 channels, got 4"):
        cls()(np.zeros((2, 8, 8, 4), np.float32))


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((2, 8, 8, 3), np.int32), TypeError, "float .* or uint8, got dtype int32"),
        (np.zeros((8, 8), np.float32), ValueError, "got rank 2"),
        (np.zeros((1, 2, 8, 8, 3), np.float32), ValueError, "got rank 5"),
        (np.zeros((2, 8, 8, 2), np.float32), ValueError, "images must have 1 or 3 channels, got 2"),
    ],
)
def test_bad_images(x, error, match):
    with pytest.raises(error, match=match):
        L.RandomContrast(0.2)(x)


def test_images_outside_value_range_warn():
    with pytest.warns(UserWarning, match=r"value_range=\(0.0, 255.0\)"):
        L.RandomBrightness(0.2)(np.full((2, 8, 8, 3), 0.5, np.float32))
