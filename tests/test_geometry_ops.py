"""keras_aug.ops.geometry: the resampler against TF's own kernel, matrix conventions, crops."""
import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_aug.ops import geometry as g


def images(b=3, h=7, w=9, c=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(0, 255, (b, h, w, c)).astype("float32"))


def affine(h, w):
    return g.compose(
        g.zoom_matrix(tf.constant([1.2, 0.8, 1.0]), tf.constant([1.0, 0.9, 1.3]), h, w),
        g.shear_matrix(tf.constant([0.2, 0.0, -0.3]), tf.constant([0.0, 0.1, 0.2]), h, w),
        g.rotation_matrix(tf.constant([0.3, -1.0, 2.0]), h, w),
        g.translation_matrix(tf.constant([1.5, -2.0, 0.3]), tf.constant([0.2, 1.0, -3.0])),
    )


@pytest.mark.parametrize("fill_mode", ["constant", "reflect", "nearest"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_warp_matches_image_projective_transform_v3(fill_mode, interpolation):
    x = images()
    m = affine(7, 9)
    ours = g.warp(x, m, interpolation, fill_mode, 17.0).numpy()
    ref = g._warp_v3(x, m, interpolation, fill_mode, 17.0).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_warp_perspective_matches_v3_and_compiles():
    x = images()
    start = tf.constant([[[0, 0], [8, 0], [8, 6], [0, 6]]] * 3, tf.float32)
    end = start + tf.constant(np.random.default_rng(1).uniform(-1.5, 1.5, (3, 4, 2)), tf.float32)
    m = tf.function(g.perspective_matrix, jit_compile=True)(start, end)
    ours = tf.function(lambda x, m: g.warp(x, m), jit_compile=True)(x, m).numpy()
    np.testing.assert_allclose(ours, g._warp_v3(x, m).numpy(), atol=2e-3)


@settings(max_examples=15, deadline=None)
@given(angle=st.floats(-3.2, 3.2), tx=st.floats(-5, 5), shear=st.floats(-0.5, 0.5),
       zoom=st.floats(0.5, 2.0))
def test_warp_matches_v3_for_any_affine(angle, tx, shear, zoom):
    x = images(b=1, h=6, w=8, seed=2)
    one = lambda v: tf.constant([v], tf.float32)  # noqa: E731
    m = g.compose(g.zoom_matrix(one(zoom), one(zoom), 6, 8),
                  g.shear_matrix(one(shear), one(0.0), 6, 8),
                  g.rotation_matrix(one(angle), 6, 8), g.translation_matrix(one(tx), one(-tx)))
    np.testing.assert_allclose(g.warp(x, m, fill_mode="reflect").numpy(),
                               g._warp_v3(x, m, fill_mode="reflect").numpy(), atol=2e-3)


def test_warp_jit_equals_eager_and_is_differentiable():
    x = images()
    m = affine(7, 9)
    compiled = tf.function(lambda x, m: g.warp(x, m, fill_mode="reflect"), jit_compile=True)
    np.testing.assert_allclose(compiled(x, m).numpy(), g.warp(x, m, fill_mode="reflect").numpy(),
                               atol=1e-4)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(compiled(x, m) * tf.range(9, dtype=tf.float32)[None, None, :, None])
    grad = tape.gradient(loss, x)
    assert grad.shape == x.shape and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_rotation_by_quarter_turn_equals_rot90():
    x = images(h=6, w=6)
    quarter = tf.fill([3], math.pi / 2)
    m = g.rotation_matrix(quarter, 6, 6)
    np.testing.assert_array_equal(g.warp(x, m, "nearest").numpy(), tf.image.rot90(x).numpy())
    np.testing.assert_allclose(g.warp(x, m).numpy(), tf.image.rot90(x).numpy(), atol=1e-3)
    # half a turn on a non-square image reverses both axes
    half = g.rotation_matrix(tf.fill([3], math.pi), 7, 9)
    np.testing.assert_allclose(g.warp(images(), half).numpy(),
                               tf.reverse(images(), [1, 2]).numpy(), atol=1e-3)


def test_integer_translation_is_exact_and_positive_moves_right_and_down():
    x = images()
    out = g.warp(x, g.translation_matrix(tf.fill([3], 2.0), tf.fill([3], 1.0))).numpy()
    np.testing.assert_array_equal(out[:, 1:, 2:], x.numpy()[:, :-1, :-2])
    assert np.all(out[:, :1] == 0) and np.all(out[:, :, :2] == 0)


def test_wrap_mode_equals_roll():
    x = images()
    shifts = [(3, -2), (-13, 9), (20, 15)]  # also several periods away
    m = g.translation_matrix(tf.constant([s[0] for s in shifts], tf.float32),
                             tf.constant([s[1] for s in shifts], tf.float32))
    out = g.warp(x, m, fill_mode="wrap").numpy()
    for i, (dx, dy) in enumerate(shifts):
        np.testing.assert_array_equal(out[i], np.roll(x.numpy()[i], (dy, dx), (0, 1)))


def test_constant_fill_value_and_reflect_edges():
    x = images()
    far = g.translation_matrix(tf.fill([3], 100.0), tf.zeros([3]))
    np.testing.assert_array_equal(g.warp(x, far, fill_value=7.0).numpy(), np.full(x.shape, 7.0))
    # reflect repeats the edge pixel: a shift by one column copies column 0 into column 0
    one = g.translation_matrix(tf.ones([3]), tf.zeros([3]))
    out = g.warp(x, one, fill_mode="reflect").numpy()
    np.testing.assert_array_equal(out[:, :, 0], x.numpy()[:, :, 0])
    np.testing.assert_array_equal(out[:, :, 1:], x.numpy()[:, :, :-1])


def test_matrix_conventions():
    h, w = 7, 9
    point = tf.constant([[4.0 + 2.0], [3.0 + 1.0], [1.0]])  # centre (4, 3) + (2, 1)

    def apply(m):
        return (m[0] @ point)[:2, 0].numpy()

    np.testing.assert_allclose(apply(g.shear_matrix(tf.constant([0.5]), tf.constant([0.0]), h, w)),
                               [6.0 + 0.5 * 1.0, 4.0], atol=1e-6)  # x_in = x + s (y - cy)
    np.testing.assert_allclose(apply(g.zoom_matrix(tf.constant([2.0]), tf.constant([2.0]), h, w)),
                               [5.0, 3.5], atol=1e-6)  # zoom 2 enlarges: samples closer to centre
    np.testing.assert_allclose(apply(g.translation_matrix(tf.constant([3.0]), tf.constant([-1.0]))),
                               [3.0, 5.0], atol=1e-6)
    np.testing.assert_array_equal(g.identity_matrix(2).numpy(), np.stack([np.eye(3)] * 2))


def test_compose_equals_sequential_warps():
    x = images()
    flip = g.flip_matrix(tf.constant([True, False, True]), tf.constant([False, True, True]), 7, 9)
    move = g.translation_matrix(tf.constant([1.0, -2.0, 3.0]), tf.constant([2.0, 0.0, -1.0]))
    fused = g.warp(x, g.compose(flip, move), "nearest").numpy()
    chained = g.warp(g.warp(x, flip, "nearest"), move, "nearest").numpy()
    np.testing.assert_array_equal(fused, chained)
    np.testing.assert_array_equal(
        g.warp(x, flip, "nearest").numpy(),
        g.flip(x, tf.constant([True, False, True]), tf.constant([False, True, True])).numpy())


def test_perspective_matrix_maps_end_points_to_start_points():
    start = tf.constant([[[0, 0], [8, 0], [8, 6], [0, 6]]] * 2, tf.float32)
    end = start + tf.constant([[[1, 1], [-2, 0.5], [-1, -1], [0.5, -2]], [[0, 0]] * 4], tf.float32)
    m = g.perspective_matrix(start, end)
    p = tf.concat([end, tf.ones([2, 4, 1])], -1)
    q = tf.einsum("bij,bkj->bki", m, p)
    np.testing.assert_allclose((q[..., :2] / q[..., 2:]).numpy(), start.numpy(), atol=1e-4)
    np.testing.assert_allclose(m[1].numpy(), np.eye(3), atol=1e-5)


def test_nearest_warp_keeps_integer_masks():
    masks = tf.constant(np.random.default_rng(0).integers(0, 5, (3, 7, 9, 1)), tf.int32)
    out = g.warp(masks, affine(7, 9), "nearest", "constant", 0)
    assert out.dtype == tf.int32 and set(np.unique(out)) <= set(range(5))
    with pytest.raises(TypeError, match="bilinear warp needs float images, got dtype int32"):
        g.warp(masks, affine(7, 9))


def test_crop_and_resized_crop():
    x = images()
    out = g.crop(x, tf.constant([0, 1, 3]), tf.constant([4, 0, 2]), 4, 5).numpy()
    for i, (oy, ox) in enumerate([(0, 4), (1, 0), (3, 2)]):
        np.testing.assert_array_equal(out[i], x.numpy()[i, oy:oy + 4, ox:ox + 5])
    full = tf.constant([[0.0, 0.0, 7.0, 9.0]] * 3)
    np.testing.assert_array_equal(g.resized_crop(x, full, 7, 9).numpy(), x.numpy())
    np.testing.assert_allclose(g.resized_crop(x, full, 14, 18).numpy(),
                               tf.image.resize(x, (14, 18)).numpy(), atol=1e-3)
    box = tf.constant([[1.0, 2.0, 4.0, 5.0]] * 3)  # an integer box at its own size is a crop
    np.testing.assert_array_equal(g.resized_crop(x, box, 4, 5, "nearest").numpy(),
                                  x.numpy()[:, 1:5, 2:7])
    # crop, then resize (torchvision's resized_crop): the box's edge rows repeat, never the
    # image's rows outside it; the same under XLA
    up = g.resized_crop(x, box, 9, 11).numpy()
    np.testing.assert_allclose(up, tf.image.resize(x[:, 1:5, 2:7], (9, 11)).numpy(), atol=1e-4)
    xla = tf.function(lambda a, b: g.resized_crop(a, b, 9, 11), jit_compile=True)
    np.testing.assert_allclose(xla(x, box).numpy(), up, atol=1e-4)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"interpolation": "cubic"}, ValueError, "interpolation must be one of .*got 'cubic'"),
    ({"fill_mode": "mirror"}, ValueError, "fill_mode must be one of .*got 'mirror'"),
])
def test_warp_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        g.warp(images(), affine(7, 9), **kwargs)


def test_warp_bad_rank_and_empty_compose():
    with pytest.raises(ValueError, match=r"images must have rank 4 \(B, H, W, C\), got shape"):
        g.warp(images()[0], affine(7, 9)[:1])
    with pytest.raises(ValueError, match="compose needs at least one matrix"):
        g.compose()


def test_warp_in_graph_mode_equals_eager():
    """Regression: TF 2.21's Grappler dropped the new axes of `m[:, i, None, None]` in graph mode,
    so a bare translation matrix shifted columns instead of images (wrong output, no error)."""
    images = tf.constant(np.random.default_rng(0).random((4, 4, 4, 1)), tf.float32)
    dx = tf.constant([1.0, 0.0, -1.0, 2.0])
    dy = tf.constant([0.0, 1.0, 0.0, 0.0])

    def shift(x, dx, dy):
        return g.warp(x, g.translation_matrix(dx, dy), interpolation="nearest")

    eager = shift(images, dx, dy)
    assert np.array_equal(tf.function(shift)(images, dx, dy), eager)
    assert np.array_equal(eager[0, :, 1:], images[0, :, :-1])  # content moved right by 1
