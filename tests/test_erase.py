"""Erasing: ops.erase (cutout, multi-box eraser, grid mask) and RandomErasing/RandomCutout/GridMask.

XLA compilation costs seconds per layer and input signature on a loaded 2-core machine, so the
behaviour tests run the apply step as a plain graph (`_graph_apply`); `test_xla_equals_graph`
checks once per layer and fill mode that the XLA-compiled step gives identical outputs.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.core import AugmentationLayer
from keras_aug.ops import erase as ops

B, S = 16, 32


# Behaviour tests run the apply step eagerly (fast); one test per file checks XLA equality.
pytestmark = pytest.mark.usefixtures("eager_apply")


def _images(seed=0, batch=B, size=S, channels=3):
    """Values in [10, 245] so a fill of 0 or 255 marks erased pixels unambiguously."""
    rng = np.random.default_rng(seed)
    return rng.uniform(10, 245, (batch, size, size, channels)).astype("float32")


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1


# ----------------------------------------------------------------------------- ops
def test_cutout_exact_box_clipping_and_identity():
    x = tf.constant(_images(batch=4))
    cy = tf.constant([16.0, 0.0, 31.0, 10.0])
    cx = tf.constant([16.0, 0.0, 31.0, 10.0])
    h = tf.constant([8.0, 10.0, 6.0, 0.0])
    w = tf.constant([4.0, 10.0, 6.0, 7.0])
    out = ops.cutout(x, cy, cx, h, w, fill_value=0.0).numpy()
    erased = np.all(out == 0, axis=-1)
    assert _bbox(erased[0]) == (12, 14, 20, 18)
    assert _bbox(erased[1]) == (0, 0, 5, 5)  # clipped at the top-left corner
    assert _bbox(erased[2]) == (28, 28, 32, 32)  # clipped at the bottom-right corner
    np.testing.assert_array_equal(out[3], x.numpy()[3])  # height 0: identity
    np.testing.assert_array_equal(out[~erased], x.numpy()[~erased])


def test_cutout_per_sample_fill_gradient_and_xla():
    x = tf.Variable(_images(batch=2, size=16))
    size = tf.constant([4.0, 6.0])
    centre = tf.constant([8.0, 8.0])
    fill = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[:, None, None, :]
    with tf.GradientTape() as tape:
        out = ops.cutout(x, centre, centre, size, size, fill)
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    assert grad.sum() == 3 * (2 * 256 - 16 - 36)  # zero gradient inside the boxes only
    np.testing.assert_array_equal(out.numpy()[1, 8, 8], [4.0, 5.0, 6.0])
    compiled = tf.function(ops.cutout, jit_compile=True)
    np.testing.assert_array_equal(compiled(x, centre, centre, size, size, fill), out)


def test_erase_boxes_per_box_colours_overlap_and_empty():
    x = tf.constant(_images(batch=2, size=8, channels=1))
    edges = tf.constant([[[0, 0, 4, 4], [2, 2, 6, 6]], [[1, 1, 1, 5], [0, 0, 0, 0]]])
    fill = tf.constant([[[1.0], [2.0]], [[3.0], [4.0]]])
    out = ops.erase_boxes(x, edges, fill).numpy()[..., 0]
    assert out[0, 0, 0] == 1.0 and out[0, 3, 3] == 2.0 and out[0, 5, 5] == 2.0  # later box wins
    assert (out[0] == 1.0).sum() == 12 and (out[0] == 2.0).sum() == 16
    np.testing.assert_array_equal(out[1], x.numpy()[1, ..., 0])  # empty boxes erase nothing
    np.testing.assert_array_equal(ops.box_area(edges).numpy(), [[16, 16], [0, 0]])


def test_grid_mask_matches_modulo_definition():
    rng = np.random.default_rng(0)
    unit = rng.integers(2, 40, 16).astype("float32")
    hole = np.floor(unit * rng.uniform(0, 1, 16)).astype("float32")
    oy, ox = (np.floor(rng.uniform(0, 1, 16) * unit).astype("float32") for _ in range(2))
    mask = ops.grid_mask(50, 45, unit, hole, oy, ox).numpy()
    i, j = np.arange(50)[None], np.arange(45)[None]
    rows = ((i + oy[:, None]) % unit[:, None]) < hole[:, None]
    cols = ((j + ox[:, None]) % unit[:, None]) < hole[:, None]
    np.testing.assert_array_equal(mask, rows[:, :, None] & cols[:, None, :])


# ----------------------------------------------------------------------------- RandomErasing
def test_random_erasing_area_and_aspect_within_ranges():
    scale, ratio = (0.05, 0.3), (0.5, 2.0)
    layer = L.RandomErasing(scale=scale, ratio=ratio, fill_value=0.0, seed=1)
    x = _images(batch=64)
    out = layer(x).numpy()
    erased = np.all(out == 0, axis=-1)
    areas, aspects = [], []
    for m in erased:
        if not m.any():
            continue
        y0, x0, y1, x1 = _bbox(m)
        assert m.sum() == (y1 - y0) * (x1 - x0)  # one solid rectangle, inside the image
        areas.append(m.sum() / S**2)
        aspects.append((y1 - y0) / (x1 - x0))
    assert len(areas) >= 60  # almost every box fits at these ranges
    h_tol = 1.0 / S  # rounding the sides to whole pixels
    assert min(areas) >= scale[0] * (1 - 4 * h_tol) - 2 * h_tol
    assert max(areas) <= scale[1] * (1 + 4 * h_tol) + 2 * h_tol
    assert min(aspects) >= ratio[0] * 0.75 and max(aspects) <= ratio[1] / 0.75
    assert len(set(np.round(areas, 4))) > 20  # per-sample boxes
    np.testing.assert_array_equal(out[~erased], x[~erased])


def test_random_erasing_up_to_n_boxes_with_random_colours():
    layer = L.RandomErasing(scale=(0.1, 0.3), mode="random", max_boxes=3, seed=2)
    x = _images(batch=32)
    out = layer(x).numpy()
    counts = []
    for a, b in zip(out, x):
        changed = np.any(a != b, axis=-1)
        colours = {tuple(c) for c in a[changed]}
        counts.append(len(colours))  # one colour per box
        assert np.all((a >= 0) & (a <= 255))
    assert max(counts) == 3 and min(counts) >= 1 and len(set(counts)) > 1


def test_random_erasing_fill_modes_constant_per_channel_and_pixel():
    x = _images(batch=8)
    const = L.RandomErasing(scale=(0.2, 0.3), fill_value=(1.0, 2.0, 3.0), seed=0)(x).numpy()
    changed = np.any(const != x, axis=-1)
    assert changed.any()
    np.testing.assert_array_equal(const[changed], np.broadcast_to([1.0, 2.0, 3.0], const[changed].shape))
    noise = L.RandomErasing(scale=(0.2, 0.3), mode="pixel", value_range=(0, 1), seed=0)(x / 255).numpy()
    changed = np.any(noise != x / 255, axis=-1)
    assert len(np.unique(noise[changed])) > 0.9 * noise[changed].size  # per-pixel values
    assert noise.min() >= 0 and noise.max() <= 1


def test_random_erasing_seed_probability_training_and_uint8():
    x = _images(batch=8)
    a = L.RandomErasing(seed=5)
    b = L.RandomErasing(seed=5)
    first = a(x).numpy()
    np.testing.assert_array_equal(first, b(x).numpy())
    assert not np.array_equal(first, a(x).numpy())  # a fresh draw per call
    np.testing.assert_array_equal(L.RandomErasing(p=0.0)(x), x)
    np.testing.assert_array_equal(a(x, training=False), x)
    u8 = a(x.astype("uint8"))
    assert u8.dtype == tf.uint8 and u8.shape == x.shape
    masks = np.ones([8, S, S, 1], "int32")
    out = a({"images": x, "segmentation_masks": masks, "labels": np.arange(8)})
    np.testing.assert_array_equal(out["segmentation_masks"], masks)
    np.testing.assert_array_equal(out["labels"], np.arange(8))


def test_xla_equals_eager_and_runs_in_tf_data():
    x = _images(batch=8)
    for make in (lambda: L.RandomErasing(max_boxes=2, mode="random", seed=0),
                 lambda: L.RandomCutout(mode="pixel", seed=0), lambda: L.GridMask(seed=0)):
        compiled, eager = make(), make()
        compiled.jit_compile = True
        tf.config.run_functions_eagerly(False)
        out = compiled(x)
        tf.config.run_functions_eagerly(True)
        np.testing.assert_array_equal(out, eager(x))
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8))).repeat(2)
    ds = ds.batch(8, drop_remainder=True).map(compiled, num_parallel_calls=2)  # ds.map(layer)
    batches = list(ds)
    assert [b[0].shape for b in batches] == [(8, S, S, 3)] * 2
    assert not np.array_equal(batches[0][0], x) and not np.array_equal(batches[0][0], batches[1][0])
    np.testing.assert_array_equal(batches[1][1], np.arange(8))


# ----------------------------------------------------------------------------- RandomCutout, GridMask
def test_random_cutout_square_of_given_size():
    x = _images(batch=32)
    out = L.RandomCutout(size=0.25, fill_value=0.0, seed=3)(x).numpy()
    erased = np.all(out == 0, axis=-1)
    full = 0
    for m in erased:
        y0, x0, y1, x1 = _bbox(m)
        assert m.sum() == (y1 - y0) * (x1 - x0) and max(y1 - y0, x1 - x0) <= 8
        full += (y1 - y0, x1 - x0) == (8, 8)
    assert 0 < full < 32  # squares clipped at borders sometimes, not always


def test_grid_mask_erases_about_ratio_squared():
    x = _images(batch=16, size=64)
    out = L.GridMask(ratio=0.5, unit=(0.2, 0.4), fill_value=0.0, seed=0)(x).numpy()
    fraction = np.all(out == 0, axis=-1).mean(axis=(1, 2))
    assert np.all((fraction > 0.12) & (fraction < 0.45))
    assert len(set(np.round(fraction, 4))) > 4  # per-sample grids
    np.testing.assert_array_equal(L.GridMask(ratio=0.0, seed=0)(x), x)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.RandomErasing(scale=(0.4, 0.1)), r"scale must be \(min, max\).*\(0.4, 0.1\)"),
        (lambda: L.RandomErasing(scale=(0.1, 1.5)), r"scale must lie within \[0.0, 1.0\]"),
        (lambda: L.RandomErasing(ratio=(-1, 2)), r"ratio must lie within"),
        (lambda: L.RandomErasing(mode="noise"), r"mode must be one of .*'noise'"),
        (lambda: L.RandomErasing(fill_value="black"), r"fill_value must be a number.*'black'"),
        (lambda: L.RandomErasing(max_boxes=0), r"max_boxes must be an integer >= 1, got 0"),
        (lambda: L.RandomErasing(min_boxes=3, max_boxes=2), r"min_boxes must be <= max_boxes"),
        (lambda: L.RandomErasing(p=1.5), r"p must be a probability in \[0, 1\], got 1.5"),
        (lambda: L.RandomCutout(size=2.0), r"size must be a fraction in \[0, 1\], got 2.0"),
        (lambda: L.GridMask(ratio=1.0), r"ratio must be a number in \[0, 1\), got 1.0"),
        (lambda: L.GridMask(unit=(0.0, 0.5)), r"unit must be a \(min, max\) range with min > 0"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    layer = L.RandomErasing(fill_value=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="fill_value has 3 values but the images have 1 channels"):
        layer(np.zeros([2, 8, 8, 1], "float32"))
    with pytest.raises(ValueError, match="images must have rank 4"):
        L.RandomCutout()(np.zeros([8, 8], "float32"))
    with pytest.raises(TypeError, match="int32"):
        L.GridMask()(np.zeros([2, 8, 8, 3], "int32"))
