"""keras_aug.ops.color against PIL (the reference implementation behind AutoAugment) on real photos.

Tolerance: PIL truncates blend results to integers where we round, and rounds intermediate
grayscale/smoothed images that we keep in float, so enhance ops may differ by one level
(measured: mean <= 0.4, max 1). ImageOps point ops (solarize, posterize, invert, equalize) must
match exactly; autocontrast truncates in PIL (max 1 level).
"""
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from keras_aug.ops import color as C

skdata = pytest.importorskip("skimage.data")

VR = (0.0, 255.0)
ENHANCE_FACTORS = (0.0, 0.3, 1.0, 1.6, 1.9)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """astronaut, coffee, chelsea resized to 64x64 uint8 RGB."""
    out = []
    for load in (skdata.astronaut, skdata.coffee, skdata.chelsea):
        out.append(np.asarray(Image.fromarray(load()).resize((64, 64), Image.BILINEAR)))
    return np.stack(out)


def as_uint8(x) -> np.ndarray:
    return np.clip(np.round(np.asarray(x)), 0, 255).astype(np.uint8)


def assert_close_to_pil(ours: np.ndarray, ref: np.ndarray, mean_tol: float, max_tol: int) -> None:
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.mean() <= mean_tol and diff.max() <= max_tol, (diff.mean(), diff.max())


def batch_with_params(photos, params):
    """Every photo with every parameter: (len(photos) * len(params)) images, params per sample."""
    images = np.repeat(photos, len(params), axis=0)
    per_sample = np.tile(np.asarray(params), len(photos))
    return images, per_sample


@pytest.mark.parametrize(
    "op, enhancer",
    [
        (C.brightness, ImageEnhance.Brightness),
        (C.contrast, ImageEnhance.Contrast),
        (C.saturation, ImageEnhance.Color),
        (C.sharpness, ImageEnhance.Sharpness),
    ],
    ids=["brightness", "contrast", "saturation", "sharpness"],
)
def test_enhance_ops_match_pil(photos, op, enhancer):
    images, factors = batch_with_params(photos, ENHANCE_FACTORS)
    ours = as_uint8(op(tf.constant(images, tf.float32), tf.constant(factors, tf.float32), VR))
    ref = np.stack(
        [np.asarray(enhancer(Image.fromarray(i)).enhance(float(f))) for i, f in zip(images, factors)]
    )
    assert_close_to_pil(ours, ref, mean_tol=0.5, max_tol=1)


def test_point_ops_match_pil_exactly(photos):
    thresholds = (0, 1, 64, 128, 200, 255, 256)
    images, t = batch_with_params(photos, thresholds)
    ours = as_uint8(C.solarize(tf.constant(images, tf.float32), tf.constant(t, tf.float32), VR))
    ref = np.stack([np.asarray(ImageOps.solarize(Image.fromarray(i), int(v))) for i, v in zip(images, t)])
    np.testing.assert_array_equal(ours, ref)

    images, bits = batch_with_params(photos, range(1, 9))
    ours = as_uint8(C.posterize(tf.constant(images, tf.float32), tf.constant(bits, tf.int32), VR))
    ref = np.stack([np.asarray(ImageOps.posterize(Image.fromarray(i), int(b))) for i, b in zip(images, bits)])
    np.testing.assert_array_equal(ours, ref)

    x = tf.constant(photos, tf.float32)
    ref = np.stack([np.asarray(ImageOps.invert(Image.fromarray(i))) for i in photos])
    np.testing.assert_array_equal(as_uint8(C.invert(x, VR)), ref)


def test_equalize_matches_pil_exactly_per_image_and_channel(photos):
    # a flat channel and a two-valued image exercise PIL's "step == 0" identity branch
    flat = np.full((64, 64, 3), 90, np.uint8)
    flat[..., 0] = np.arange(64, dtype=np.uint8)[None, :] * 3
    two = np.where(np.arange(64)[:, None, None] < 63, 10, 200).astype(np.uint8) * np.ones((1, 64, 3), np.uint8)
    images = np.concatenate([photos, flat[None], two[None]])
    ours = as_uint8(C.equalize(tf.constant(images, tf.float32), VR))
    ref = np.stack([np.asarray(ImageOps.equalize(Image.fromarray(i))) for i in images])
    np.testing.assert_array_equal(ours, ref)


def test_autocontrast_matches_pil(photos):
    # shrink the photos' range so autocontrast has work to do; one flat channel stays flat
    images = (photos.astype(np.float32) * 0.5 + 40).astype(np.uint8)
    images[0, ..., 2] = 77
    ours = as_uint8(C.autocontrast(tf.constant(images, tf.float32), VR))
    ref = np.stack([np.asarray(ImageOps.autocontrast(Image.fromarray(i))) for i in images])
    assert_close_to_pil(ours, ref, mean_tol=0.6, max_tol=1)
    assert np.all(ours[0, ..., 2] == 77)


def test_grayscale_matches_pil_convert_l(photos):
    ours = as_uint8(C.grayscale(tf.constant(photos, tf.float32), VR))
    ref = np.stack([np.asarray(Image.fromarray(i).convert("L").convert("RGB")) for i in photos])
    assert_close_to_pil(ours, ref, mean_tol=0.1, max_tol=1)
    rgba = tf.concat([tf.constant(photos, tf.float32), tf.fill([3, 64, 64, 1], 7.0)], axis=-1)
    out = C.grayscale(rgba, VR)
    assert out.shape == rgba.shape and np.all(out.numpy()[..., 3] == 7.0)


def test_hue_matches_hsv_round_trip(photos):
    deltas = (-0.5, -0.31, 0.0, 0.1, 0.25, 0.5)
    images, d = batch_with_params(photos, deltas)
    x = tf.constant(images, tf.float32)
    ours = C.hue(x, tf.constant(d, tf.float32), VR).numpy()
    ref = np.stack([tf.image.adjust_hue(i / 255.0, float(v)).numpy() * 255 for i, v in zip(x, d)])
    np.testing.assert_allclose(ours, ref, atol=0.05)


def test_solarize_add_follows_autoaugment(photos):
    x = tf.constant(photos, tf.float32)
    out = C.solarize_add(x, tf.constant([0.0, 50.0, 110.0]), tf.constant([128.0, 128.0, 200.0]), VR)
    ref = photos.astype(np.float32)
    add = np.array([0.0, 50.0, 110.0])[:, None, None, None]
    thr = np.array([128.0, 128.0, 200.0])[:, None, None, None]
    ref = np.where(ref < thr, np.minimum(ref + add, 255.0), ref)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_gaussian_blur_matches_scipy_per_sample(photos):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = photos.astype(np.float32)
    sigmas = np.array([0.5, 1.0, 2.0], np.float32)
    out = C.gaussian_blur(tf.constant(x), tf.constant(sigmas), VR, kernel_size=9).numpy()
    for i, s in enumerate(sigmas):
        ref = ndimage.gaussian_filter(x[i], (s, s, 0), mode="mirror", truncate=4.0 / s)
        np.testing.assert_allclose(out[i], ref, atol=0.02)


def test_color_jitter_equals_sequential_ops_without_clipping():
    x = tf.random.stateless_uniform([4, 8, 8, 3], [1, 2], 80.0, 170.0)
    fb, fc, fs = tf.constant([1.1, 0.9, 1.0, 1.05]), tf.constant([0.8, 1.2, 1.0, 0.9]), tf.constant(
        [1.3, 0.5, 1.0, 0.0]
    )
    hue = tf.constant([0.1, -0.2, 0.0, 0.3])
    fused = C.color_jitter(x, fb, fc, fs, hue, VR)
    seq = C.hue(C.saturation(C.contrast(C.brightness(x, fb, VR), fc, VR), fs, VR), hue, VR)
    np.testing.assert_allclose(fused.numpy(), seq.numpy(), atol=1e-3)
    same = C.color_jitter(x, 1.0, 1.0, 1.0, None, VR)
    np.testing.assert_allclose(same.numpy(), x.numpy(), atol=1e-4)


def _all_ops(bsz):
    """(name, fn(images, value_range)) with per-sample parameters for every op."""
    lin = lambda a, b: tf.linspace(a, b, bsz)  # noqa: E731
    span = lambda vr: vr[1] - vr[0]  # noqa: E731
    return [
        ("brightness", lambda x, vr: C.brightness(x, lin(0.2, 1.8), vr)),
        ("contrast", lambda x, vr: C.contrast(x, lin(0.2, 1.8), vr)),
        ("saturation", lambda x, vr: C.saturation(x, lin(0.0, 2.0), vr)),
        ("sharpness", lambda x, vr: C.sharpness(x, lin(0.0, 2.0), vr)),
        ("solarize", lambda x, vr: C.solarize(x, vr[0] + span(vr) * lin(0.3, 0.9), vr)),
        ("solarize_add", lambda x, vr: C.solarize_add(
            x, span(vr) * lin(0.0, 0.4), vr[0] + span(vr) * lin(0.5, 0.7), vr)),
        ("posterize", lambda x, vr: C.posterize(x, tf.range(bsz) % 8 + 1, vr)),
        ("invert", C.invert),
        ("equalize", C.equalize),
        ("autocontrast", C.autocontrast),
        ("grayscale", C.grayscale),
        ("hue", lambda x, vr: C.hue(x, lin(-0.5, 0.5), vr)),
        ("gaussian_blur", lambda x, vr: C.gaussian_blur(x, lin(0.1, 2.0), vr, kernel_size=5)),
        ("color_jitter", lambda x, vr: C.color_jitter(
            x, lin(0.5, 1.5), lin(0.5, 1.5), lin(0.0, 2.0), lin(-0.2, 0.2), vr)),
    ]


def test_value_range_01_equals_0255_scaled_and_output_in_range():
    bsz = 6
    x = tf.round(tf.random.stateless_uniform([bsz, 12, 10, 3], [3, 4], 0.0, 255.0))
    for name, fn in _all_ops(bsz):
        big = fn(x, (0.0, 255.0)).numpy()
        small = fn(x / 255.0, (0.0, 1.0)).numpy()
        assert big.shape == x.shape and big.dtype == np.float32, name
        assert big.min() >= 0.0 and big.max() <= 255.0, name
        np.testing.assert_allclose(small * 255.0, big, atol=2e-3, err_msg=name)


def test_jit_compile_equals_eager_for_ops_without_a_layer():
    # every other op runs under jit_compile=True in tests/test_color_layers.py (the layers compile)
    bsz = 4
    x = tf.round(tf.random.stateless_uniform([bsz, 9, 11, 3], [5, 6], 0.0, 255.0))
    ops = [(n, f) for n, f in _all_ops(bsz) if n in ("solarize_add", "saturation", "brightness")]
    compiled = tf.function(lambda t: [fn(t, VR) for _, fn in ops], jit_compile=True)(x)
    for (name, fn), out in zip(ops, compiled):
        np.testing.assert_allclose(out.numpy(), fn(x, VR).numpy(), atol=1e-3, err_msg=name)


def test_identity_parameters():
    x = tf.random.stateless_uniform([3, 8, 8, 3], [7, 8], 0.0, 255.0)  # not on the 256 levels
    xn = x.numpy()
    for fn in (C.brightness, C.contrast, C.saturation, C.sharpness):
        np.testing.assert_allclose(fn(x, tf.ones([3]), VR).numpy(), xn, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(C.solarize(x, tf.fill([3], 256.0), VR).numpy(), xn)
    np.testing.assert_array_equal(C.solarize_add(x, tf.zeros([3]), 128.0, VR).numpy(), xn)
    np.testing.assert_array_equal(C.posterize(x, tf.fill([3], 8), VR).numpy(), xn)
    np.testing.assert_allclose(C.hue(x, tf.zeros([3]), VR).numpy(), xn, atol=1e-3)
    np.testing.assert_allclose(C.gaussian_blur(x, tf.zeros([3]), VR, kernel_size=5).numpy(), xn, atol=1e-3)
    np.testing.assert_allclose(C.invert(C.invert(x, VR), VR).numpy(), xn, atol=1e-4)


def test_enhance_ops_are_differentiable_wrt_images():
    x = tf.random.stateless_uniform([2, 8, 8, 3], [9, 9], 60.0, 190.0)
    for fn in (C.brightness, C.contrast, C.saturation, C.sharpness, C.hue):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x, tf.constant([1.3, 0.7]) if fn is not C.hue else tf.constant([0.1, -0.1]), VR))
        grad = tape.gradient(loss, x)
        assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0


def test_gaussian_blur_rejects_even_kernel():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer, got 4"):
        C.gaussian_blur(tf.zeros([1, 8, 8, 3]), tf.ones([1]), VR, kernel_size=4)


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True)
@hypothesis.given(
    seed=st.integers(0, 2**31 - 1),
    threshold=st.integers(0, 256),
    bits=st.integers(1, 8),
    factor=st.floats(0.0, 2.0),
)
def test_random_parameters_match_pil(seed, threshold, bits, factor):
    image = np.random.default_rng(seed).integers(0, 256, (6, 7, 3)).astype(np.uint8)
    x = tf.constant(image[None], tf.float32)
    pil = Image.fromarray(image)
    np.testing.assert_array_equal(
        as_uint8(C.solarize(x, float(threshold), VR))[0], np.asarray(ImageOps.solarize(pil, threshold))
    )
    np.testing.assert_array_equal(
        as_uint8(C.posterize(x, bits, VR))[0], np.asarray(ImageOps.posterize(pil, bits))
    )
    # PIL rounds the mean to an integer and truncates the blend: together at most 2 levels apart
    ours = as_uint8(C.contrast(x, factor, VR))[0]
    assert np.abs(ours.astype(int) - np.asarray(ImageEnhance.Contrast(pil).enhance(factor))).max() <= 2
    out = C.brightness(x, factor, VR).numpy()
    assert out.min() >= 0.0 and out.max() <= 255.0
