"""Geometric layers: invariants, Keras conventions, Keras' defects, errors, end to end."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.core.random import Draws

H, W = 12, 16  # non-square on purpose


def images(n=6, h=H, w=W, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, h, w, c)).astype("float32")


LAYERS = {
    "RandomFlip": lambda **k: L.RandomFlip("horizontal_and_vertical", **k),
    "RandomAffine": lambda **k: L.RandomAffine(rotation=0.1, translate_x=0.1, translate_y=0.1,
                                               zoom_y=0.2, shear_x=0.2, shear_y=0.1, **k),
    "RandomRotation": lambda **k: L.RandomRotation(0.2, **k),
    "RandomTranslation": lambda **k: L.RandomTranslation(0.2, 0.2, **k),
    "RandomZoom": lambda **k: L.RandomZoom((-0.3, 0.3), **k),
    "RandomShear": lambda **k: L.RandomShear(0.3, 0.3, **k),
    "RandomPerspective": lambda **k: L.RandomPerspective(0.5, **k),
    "RandomCrop": lambda **k: L.RandomCrop(8, 10, **k),
    "RandomResizedCrop": lambda **k: L.RandomResizedCrop(10, 10, **k),
    "CenterCrop": lambda **k: L.CenterCrop(8, 10, **k),
}
OUT_SIZE = {"RandomCrop": (8, 10), "RandomResizedCrop": (10, 10), "CenterCrop": (8, 10)}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_shape_dtype_range_per_sample_and_inference(name):
    x = np.repeat(images(n=1), 6, axis=0)  # identical images: differences come from parameters
    layer = LAYERS[name](seed=3)
    out = np.asarray(layer(x))
    h, w = OUT_SIZE.get(name, (H, W))
    assert out.shape == (6, h, w, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    distinct = len({image.tobytes() for image in out})
    if name != "CenterCrop":  # per-sample parameters (a flip has only 4 outcomes)
        assert distinct >= {"RandomFlip": 2, "RandomCrop": 4}.get(name, 6)
    inference = np.asarray(layer(x, training=False))
    if name in OUT_SIZE:  # crops stay deterministic crops so a model sees one size
        assert inference.shape == (6, h, w, 3)
        top, left = (H - h) // 2, (W - w) // 2
        if name != "RandomResizedCrop":
            np.testing.assert_array_equal(inference, x[:, top:top + h, left:left + w])
    else:
        np.testing.assert_array_equal(inference, x)


@pytest.mark.parametrize("name", ["RandomAffine", "RandomCrop"])
def test_same_seed_same_output(name):
    x = images()
    first, second = LAYERS[name](seed=7), LAYERS[name](seed=7)
    np.testing.assert_allclose(np.asarray(first(x)), np.asarray(second(x)), atol=1e-4)
    np.testing.assert_allclose(np.asarray(first(x)), np.asarray(second(x)), atol=1e-4)


@pytest.mark.parametrize("factory", [
    lambda: L.RandomAffine(), lambda: L.RandomRotation(0.0), lambda: L.RandomPerspective(0.0),
    lambda: L.RandomCrop(H, W),
    lambda: L.RandomResizedCrop(H, W, scale=(1.0, 1.0), ratio=(W / H, W / H)),
], ids=["affine", "rotation", "perspective", "crop", "resized"])
def test_identity_at_zero_magnitude(factory):
    x = images()
    np.testing.assert_allclose(np.asarray(factory()(x)), x, atol=1e-3)


def test_uint8_in_uint8_out_and_single_image():
    x = images().astype(np.uint8)
    layer = L.RandomRotation(0.1, seed=0)
    out = layer(x)
    assert out.dtype == tf.uint8 and out.shape == x.shape
    # a single image after a batch on the same layer (the engine once lost the rank here)
    assert layer(x[0]).shape == x[0].shape
    single = L.RandomCrop(8, 10, seed=0)(x[0])
    assert single.shape == (8, 10, 3) and single.dtype == tf.uint8


@pytest.mark.parametrize("name", ["RandomAffine", "RandomCrop", "RandomResizedCrop"])
def test_masks_follow_images(name):
    """Images built from the mask: warped with nearest, image == colour(mask) everywhere."""
    rng = np.random.default_rng(0)
    masks = rng.integers(1, 5, (6, H, W, 1)).astype("int32")
    x = np.repeat(masks * 50.0, 3, axis=-1).astype("float32")
    kwargs = {"seed": 2}
    if name not in ("RandomCrop", "RandomFlip"):
        kwargs["interpolation"] = "nearest"
    if name in ("RandomAffine", "RandomPerspective"):
        kwargs["fill_mode"] = "constant"
    out = LAYERS[name](**kwargs)({"images": x, "segmentation_masks": masks, "id": 7})
    assert out["segmentation_masks"].dtype == tf.int32 and out["id"] == 7
    np.testing.assert_array_equal(np.asarray(out["images"])[..., :1],
                                  np.asarray(out["segmentation_masks"]) * 50.0)
    assert not np.array_equal(np.asarray(out["segmentation_masks"]), masks)


def test_bilinear_images_still_get_nearest_masks():
    masks = np.random.default_rng(0).integers(0, 3, (6, H, W)).astype("int32")  # (B, H, W)
    out = L.RandomRotation(0.2, fill_mode="constant", seed=0)(
        {"images": images(), "segmentation_masks": masks})
    assert out["segmentation_masks"].shape == masks.shape
    assert set(np.unique(out["segmentation_masks"])) <= {0, 1, 2}


def test_quarter_turn_equals_rot90_and_integer_translation_is_exact():
    x = images(h=8, w=8)
    out = L.RandomRotation((0.25, 0.25), interpolation="nearest")(x)
    np.testing.assert_array_equal(out, tf.image.rot90(x))  # positive = counter-clockwise
    shifted = np.asarray(L.RandomTranslation((0.25, 0.25), (0.5, 0.5), fill_mode="constant")(x))
    np.testing.assert_array_equal(shifted[:, 2:, 4:], x[:, :-2, :-4])  # down 2, right 4
    assert np.all(shifted[:, :2] == 0)


def _matrices(layer, n=2000):
    x = tf.zeros([n, H, W, 3])
    return layer.sample_params(tf.constant(n), x, Draws(tf.constant([1, 2], tf.int64)))["matrix"]


def test_ranges_honour_both_bounds():
    """Keras defect: Solarization ignored a lower bound; here every range's two ends are reached."""
    m = _matrices(L.RandomRotation((-0.05, 0.1))).numpy()
    turns = np.arctan2(m[:, 1, 0], m[:, 0, 0]) / (2 * math.pi)
    assert turns.min() >= -0.05 - 1e-6 and turns.max() <= 0.1 + 1e-6
    assert turns.min() < -0.045 and turns.max() > 0.095
    m = _matrices(L.RandomTranslation((0.1, 0.2), (-0.3, -0.1))).numpy()
    dy, dx = -m[:, 1, 2] / H, -m[:, 0, 2] / W
    assert 0.1 - 1e-6 <= dy.min() < 0.11 and 0.19 < dy.max() <= 0.2 + 1e-6
    assert -0.3 - 1e-6 <= dx.min() < -0.29 and -0.11 < dx.max() <= -0.1 + 1e-6
    m = _matrices(L.RandomZoom((0.1, 0.5))).numpy()  # input extent 1 + f (Keras convention)
    assert 1.1 - 1e-5 <= m[:, 0, 0].min() < 1.12 and 1.48 < m[:, 0, 0].max() <= 1.5 + 1e-5
    np.testing.assert_allclose(m[:, 0, 0], m[:, 1, 1])  # width_factor=None keeps the aspect
    m = _matrices(L.RandomShear((0.2, 0.3), 0.0)).numpy()
    assert 0.2 - 1e-6 <= m[:, 0, 1].min() < 0.21 and 0.29 < m[:, 0, 1].max() <= 0.3 + 1e-6


def test_resized_crop_boxes_follow_scale_and_ratio():
    layer = L.RandomResizedCrop(10, 10, scale=(0.2, 0.6), ratio=(0.5, 2.0))
    n = 2000
    boxes = layer.sample_params(tf.constant(n), tf.zeros([n, 40, 60, 3]),
                                Draws(tf.constant([3, 4], tf.int64)))["boxes"].numpy()
    top, left, h, w = boxes.T
    assert np.all(top >= 0) and np.all(left >= 0)
    assert np.all(top + h <= 40) and np.all(left + w <= 60)
    area = h * w / (40 * 60)
    assert area.min() > 0.18 and area.max() < 0.62 and area.max() - area.min() > 0.3
    assert (w / h).min() > 0.45 and (w / h).max() < 2.2
    assert len({tuple(box) for box in boxes}) > n // 2  # per-sample boxes


def test_random_crop_offsets_are_per_sample():
    """Keras' RandomCrop uses one offset per batch (keras#16399)."""
    x = np.broadcast_to(np.arange(H * W, dtype="float32").reshape(1, H, W, 1), (16, H, W, 1))
    out = np.asarray(L.RandomCrop(5, 6, seed=0)(np.ascontiguousarray(x)))
    corners = out[:, 0, 0, 0].astype(int)
    tops, lefts = corners // W, corners % W
    assert len(set(zip(tops, lefts))) > 8
    for i in range(16):  # each crop is an exact slice
        np.testing.assert_array_equal(out[i], x[i, tops[i]:tops[i] + 5, lefts[i]:lefts[i] + 6])


def test_flip_modes_flip_the_axes_they_name():
    """Keras defect: its default mode never flips a single axis."""
    x = images(n=1)
    batch = np.repeat(x, 64, axis=0)
    variants = {
        "h": x[0, :, ::-1], "v": x[0, ::-1], "hv": x[0, ::-1, ::-1], "none": x[0],
    }

    def kinds(mode):
        out = np.asarray(L.RandomFlip(mode, seed=0)(batch))
        found = set()
        for image in out:
            match = [k for k, v in variants.items() if np.array_equal(image, v)]
            assert len(match) == 1
            found.add(match[0])
        return found

    assert kinds("horizontal") == {"h", "none"}
    assert kinds("vertical") == {"v", "none"}
    assert kinds("horizontal_and_vertical") == {"h", "v", "hv", "none"}


@pytest.mark.parametrize("factory", [
    lambda: L.RandomPerspective(0.5, p=1.0, seed=0), lambda: L.RandomRotation((0.1, 0.2), seed=0),
], ids=["perspective", "rotation"])
def test_p_one_always_applies(factory):
    """Keras defect: RandomPerspective(factor=1.0) distorts only about half the images."""
    x = np.repeat(images(n=1), 32, axis=0)
    out = np.asarray(factory()(x))
    changed = np.abs(out - x).reshape(32, -1).max(axis=1) > 1.0
    assert changed.all()


def test_p_leaves_some_images_untouched_and_crop_p_uses_centre():
    x = images(n=32)
    out = np.asarray(L.RandomAffine(rotation=0.2, p=0.5, seed=0)(x))
    same = np.all(out == x, axis=(1, 2, 3))
    assert 4 < same.sum() < 28
    crops = np.asarray(L.RandomCrop(8, 10, p=0.5, seed=0)(x))
    centre = np.all(crops == x[:, 2:10, 3:13], axis=(1, 2, 3))
    assert 4 < centre.sum() < 28


def test_jit_equals_non_jit():
    x = images()
    compiled = L.RandomAffine(rotation=0.2, zoom_y=0.2, shear_x=0.2, seed=5)
    plain = L.RandomAffine(rotation=0.2, zoom_y=0.2, shear_x=0.2, seed=5)
    plain.jit_compile = False
    np.testing.assert_allclose(np.asarray(compiled(x)), np.asarray(plain(x)), atol=1e-3)
    step = tf.function(lambda v: compiled(v, training=True), jit_compile=True)
    assert step(tf.constant(x)).shape == x.shape


def test_rotation_config_keeps_factor():
    rotation = L.RandomRotation((-0.1, 0.2), fill_mode="constant", fill_value=3.0).get_config()
    assert rotation["factor"] == (-0.1, 0.2) and "rotation" not in rotation


@pytest.mark.slow
def test_fit_in_tf_data():
    x = images(n=16, h=16, w=16).astype("uint8")
    y = np.arange(16) % 2
    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        L.RandomAffine(rotation=0.05, translate_x=0.1, zoom_y=0.1, seed=0),
        L.RandomResizedCrop(12, 12, scale=(0.5, 1.0), seed=1),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(4, 3),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    augment = L.RandomCrop(14, 14, seed=2)
    ds = (tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
          .map(lambda a, b: (tf.image.resize(augment(a), (16, 16)), b)))
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("factory, error, message", [
    (lambda: L.RandomRotation(-0.1), ValueError, "factor must be non-negative .* got -0.1"),
    (lambda: L.RandomRotation((0.2, 0.1)), ValueError,
     r"factor must be \(min, max\) with min <= max, got \(0.2, 0.1\)"),
    (lambda: L.RandomTranslation(0.1, (0.5, 1.5)), ValueError,
     r"width_factor must lie within \[-1, 1\], got \(0.5, 1.5\)"),
    (lambda: L.RandomZoom((-1.0, 0.2)), ValueError, "height_factor must be > -1 .*got"),
    (lambda: L.RandomShear("big"), ValueError, "x_factor must be a number or a"),
    (lambda: L.RandomAffine(shear_y=(0.3, -0.3)), ValueError, "shear_y must be"),
    (lambda: L.RandomRotation(0.1, fill_mode="mirror"), ValueError,
     r"fill_mode must be one of \['constant', 'reflect', 'nearest', 'wrap'\], got 'mirror'"),
    (lambda: L.RandomAffine(interpolation="cubic"), ValueError,
     r"interpolation must be one of \['bilinear', 'nearest'\], got 'cubic'"),
    (lambda: L.RandomRotation(0.1, fill_value="black"), ValueError,
     "fill_value must be a number .*got 'black'"),
    (lambda: L.RandomPerspective(1.5), ValueError, r"scale must be a number in \[0, 1\], got 1.5"),
    (lambda: L.RandomCrop(0, 4), ValueError, "height must be a positive integer .*got 0"),
    (lambda: L.RandomCrop(4, 2.5), ValueError, "width must be a positive integer .*got 2.5"),
    (lambda: L.RandomCrop(4, 4, p=1.5), ValueError, r"p must be a probability in \[0, 1\]"),
    (lambda: L.RandomResizedCrop(8, 8, scale=(0.0, 1.0)), ValueError, "scale must be .*min > 0"),
    (lambda: L.RandomResizedCrop(8, 8, scale=(0.5, 1.5)), ValueError,
     r"scale must lie within \[0.0, 1.0\]"),
    (lambda: L.RandomResizedCrop(8, 8, ratio=(2.0, 1.0)), ValueError, "ratio must be"),
    (lambda: L.RandomResizedCrop(8, 8, ratio=(0.0, 1.0)), ValueError, "ratio must be .*min > 0"),
    (lambda: L.CenterCrop(4, 4, p=0.5), ValueError, "CenterCrop is deterministic: p must be 1.0"),
    (lambda: L.RandomFlip("diagonal"), ValueError, "mode must be one of"),
])
def test_bad_arguments(factory, error, message):
    with pytest.raises(error, match=message):
        factory()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"crop height=20, width=10 is larger than the images "
                                         r"\(12x16\)"):
        L.RandomCrop(20, 10)(images())
    with pytest.raises(ValueError, match="larger than the images"):
        L.CenterCrop(8, 17)(images())
    layer = L.RandomRotation(0.1)
    with pytest.raises(ValueError, match="images must have rank 4 .* got rank 2"):
        layer(np.zeros((4, 4), "float32"))
    with pytest.raises(ValueError, match="images must have rank 4 .* got rank 5"):
        layer(np.zeros((2, 2, 4, 4, 3), "float32"))
    with pytest.raises(TypeError, match="images must be float .* or uint8, got dtype int32"):
        layer(np.zeros((2, 4, 4, 3), "int32"))
    with pytest.raises(ValueError, match="images must have rank 4 .* got rank 5"):
        L.RandomCrop(2, 2)(np.zeros((2, 2, 4, 4, 3), "float32"), training=False)
    with pytest.raises(ValueError, match="images is an empty batch"):
        L.RandomAffine(rotation=0.1)(np.zeros((0, 4, 4, 3), "float32"))
