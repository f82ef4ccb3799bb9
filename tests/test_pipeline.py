"""Pipeline (one draw, one warp, one cast) and the per-sample composition layers."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.core.random import Draws
from keras_aug.ops import geometry as ops

KEY = tf.constant([5, 7], tf.int64)


def _images(b=8, h=24, w=32, seed=0):
    return tf.random.stateless_uniform([b, h, w, 3], [seed, 1], 0, 255)


def test_pipeline_equals_the_product_of_its_matrices_applied_once():
    layers = [L.RandomRotation(0.1, fill_mode="constant", p=0.7),
              L.RandomFlip("horizontal_and_vertical"),
              L.RandomAffine(translate_x=0.1, zoom_y=0.2, shear_y=0.1, fill_mode="constant"),
              L.RandomResizedCrop(16, 20, scale=(0.5, 1.0))]
    pipe = L.Pipeline(layers, seed=0)
    x = _images()
    got = pipe.augment({"images": x}, KEY)["images"]
    # the same draws, layer by layer: matrices multiplied, then one warp
    draws = Draws(KEY)
    height, width = 24, 32
    matrices = []
    proxy = x
    for layer in layers:
        params = layer.sample_params(8, proxy, draws)
        matrix = layer.geometry_matrix(params, height, width)
        if layer.applies_p:
            apply = draws.bernoulli([8], layer.live_p())
            matrix = tf.where(apply[:, None, None], matrix, ops.identity_matrix(8))
        matrices.append(matrix)
        height, width = layer.output_size(height, width)
        proxy = tf.zeros([8, height, width, 3])
    expected = ops.warp(x, ops.compose(*matrices), "bilinear", "constant", 0.0,
                        output_size=(16, 20))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-2)  # XLA vs graph


def test_one_resampling_inverse_rotations_cancel_exactly():
    x = _images(4, 32, 32)
    there = L.RandomRotation((0.05, 0.05), fill_mode="constant")
    back = L.RandomRotation((-0.05, -0.05), fill_mode="constant")
    fused = L.Pipeline([there, back], seed=0)(x)
    sequential = keras.Sequential([L.RandomRotation((0.05, 0.05), fill_mode="constant"),
                                   L.RandomRotation((-0.05, -0.05), fill_mode="constant")])(x)
    inner = (slice(None), slice(8, 24), slice(8, 24))
    fused_error = float(tf.reduce_mean(tf.abs(fused[inner] - x[inner])))
    sequential_error = float(tf.reduce_mean(tf.abs(sequential[inner] - x[inner])))
    assert fused_error < 0.05
    assert sequential_error > 20 * fused_error


def test_pipeline_casts_once_and_keeps_dtype():
    x = tf.cast(_images(), tf.uint8)
    pipe = L.Pipeline([L.RandomBrightness(0.3), L.RandomContrast(0.3), L.RandomFlip()], seed=0)
    out = pipe(x)
    assert out.dtype == tf.uint8 and out.shape == x.shape
    assert pipe(tf.cast(x, tf.bfloat16)).dtype == tf.bfloat16


def test_pipeline_inference_is_identity_or_the_deterministic_crops():
    x = _images()
    assert np.array_equal(L.Pipeline([L.RandomFlip(), L.RandomInvert()])(x, training=False), x)
    pipe = L.Pipeline([L.RandomFlip(), L.RandomResizedCrop(16, 16), L.RandomErasing()])
    np.testing.assert_allclose(pipe(x, training=False),
                               L.RandomResizedCrop(16, 16)(x, training=False))
    assert pipe.compute_output_shape((8, 24, 32, 3)) == (8, 16, 16, 3)


def test_pipeline_in_a_model_serves_unaugmented_and_round_trips(tmp_path):
    inputs = keras.Input((24, 32, 3))
    pipe = L.Pipeline([L.RandomResizedCrop(16, 16), L.RandomFlip(), L.RandomAffine(0.05)])
    outputs = keras.layers.GlobalAveragePooling2D()(pipe(inputs))
    model = keras.Model(inputs, outputs)
    x = _images().numpy()
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-4)
    assert [type(layer).__name__ for layer in loaded.layers[1].layers] == [
        "RandomResizedCrop", "RandomFlip", "RandomAffine"]


def test_masks_follow_the_fused_warp():
    x = _images(8, 32, 32)
    masks = tf.cast(x[..., 0] > 128, tf.int32)
    pipe = L.Pipeline([L.RandomRotation(0.2, interpolation="nearest", fill_mode="constant"),
                       L.RandomFlip(),
                       L.RandomZoom(0.2, interpolation="nearest", fill_mode="constant")], seed=0)
    out = pipe({"images": x, "segmentation_masks": masks})
    inside = out["images"][..., 1] > 0  # warped in from inside the image
    expected = tf.cast(out["images"][..., 0] > 128, tf.int32)
    assert np.array_equal(tf.boolean_mask(out["segmentation_masks"], inside),
                          tf.boolean_mask(expected, inside))


def test_seeded_pipelines_repeat_and_xla_matches_graph():
    x = _images()
    def make(seed):
        return L.Pipeline([L.RandomFlip(), L.RandomAffine(0.1, 0.1), L.RandomColorJitter(
            (0, 255), 0.2, 0.2), L.RandomCutout(0.3)], seed=seed)
    a, b = make(3), make(3)
    np.testing.assert_array_equal(a(x), b(x))
    fn_graph = tf.function(a._augment_batch, jit_compile=False)
    fn_xla = tf.function(a._augment_batch, jit_compile=True)
    np.testing.assert_allclose(fn_graph({"images": x}, KEY)["images"],
                               fn_xla({"images": x}, KEY)["images"], atol=1e-2)


def test_live_state_of_inner_layers_reaches_the_pipeline():
    x = _images()
    invert = L.RandomInvert(p=0.0)
    pipe = L.Pipeline([L.RandomFlip(p=0.0), invert], seed=0)
    np.testing.assert_array_equal(pipe(x), x)
    invert.p = 1.0
    np.testing.assert_allclose(pipe(x), 255.0 - x, atol=1e-3)
    pipe.strength = 0.0
    np.testing.assert_array_equal(pipe(x), x)


def test_random_choice_picks_per_sample():
    x = _images(64)
    choice = L.RandomChoice([L.RandomInvert(p=1.0), L.RandomGrayscale(p=1.0)], seed=0)
    out = choice(x).numpy()
    inverted = np.all(np.isclose(out, 255.0 - x.numpy(), atol=1e-3), axis=(1, 2, 3))
    grey = np.all(np.isclose(out, L.RandomGrayscale(p=1.0)(x).numpy(), atol=1e-3), axis=(1, 2, 3))
    assert np.all(inverted ^ grey) and 10 < inverted.sum() < 54


def test_random_choice_weights_and_geometric_fusion():
    x = _images(64)
    never = L.RandomChoice([L.RandomInvert(p=1.0), L.RandomGrayscale(p=1.0)], weights=[0, 1])
    np.testing.assert_allclose(never(x), L.RandomGrayscale(p=1.0)(x), atol=1e-3)
    geometric = L.RandomChoice([L.RandomRotation((0.1, 0.1)), L.RandomZoom((0.3, 0.3))], seed=0)
    assert geometric.geometric
    out = geometric(x).numpy()
    rotated = L.RandomRotation((0.1, 0.1))(x).numpy()
    zoomed = L.RandomZoom((0.3, 0.3))(x).numpy()
    is_rot = np.all(np.isclose(out, rotated, atol=1e-2), axis=(1, 2, 3))
    is_zoom = np.all(np.isclose(out, zoomed, atol=1e-2), axis=(1, 2, 3))
    assert np.all(is_rot ^ is_zoom) and 10 < is_rot.sum() < 54


def test_random_order_per_sample():
    x = tf.fill([64, 8, 8, 3], 100.0)
    order = L.RandomOrder([L.RandomBrightness((0.5, 0.5)), L.RandomInvert(p=1.0)], seed=0)
    out = order(x).numpy()[:, 0, 0, 0]
    # brightness then invert: 255 - 150 = 105; invert then brightness: 155 * 1.5 = 232.5
    assert set(np.round(out, 2)) == {105.0, 232.5}


def test_random_apply_rate_is_live():
    x = _images(64)
    apply = L.RandomApply(L.RandomInvert(p=1.0), rate=0.0, seed=0)
    np.testing.assert_array_equal(apply(x), x)
    apply.rate = 1.0
    np.testing.assert_allclose(apply(x), 255.0 - x, atol=1e-3)
    apply.rate = 0.5
    changed = np.any(apply(x).numpy() != x.numpy(), axis=(1, 2, 3)).sum()
    assert 10 < changed < 54


def test_composition_round_trips_through_config():
    layer = L.RandomChoice([L.RandomRotation(0.1), L.RandomApply(L.RandomShear(0.2), 0.3)],
                           weights=[1, 2])
    clone = L.RandomChoice.from_config(layer.get_config())
    assert clone.weights_ == [1.0, 2.0]
    assert type(clone.layers[1].layer).__name__ == "RandomShear"


@pytest.mark.parametrize("make, error, match", [
    (lambda: L.Pipeline([keras.layers.RandomFlip()]), TypeError, "not a keras_aug layer"),
    (lambda: L.Pipeline(L.RandomFlip()), TypeError, "must be a list"),
    (lambda: L.Pipeline([]), ValueError, "at least 1"),
    (lambda: L.Pipeline([L.MixUp(num_classes=2)]), ValueError, "apply it after"),
    (lambda: L.Pipeline([L.RandomRotation(0.1), L.RandomPerspective()]), ValueError,
     "one fill_mode"),
    (lambda: L.Pipeline([L.RandomResizedCrop(8, 8)], p=0.5), ValueError, "p must be 1.0"),
    (lambda: L.Pipeline([L.RandomFlip(value_range=(0, 1)), L.RandomInvert()]), ValueError,
     "value ranges"),
    (lambda: L.RandomChoice([L.RandomCrop(8, 8)]), ValueError, "crop"),
    (lambda: L.RandomApply(L.RandomCrop(8, 8)), ValueError, "its p argument"),
    (lambda: L.RandomChoice([L.RandomFlip()], weights=[1, 2]), ValueError, "weights"),
])
def test_bad_composition_is_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def _square_scene(b=16, size=48):
    """Images with one bright square each, and its xyxy box."""
    rng = np.random.default_rng(0)
    images = np.zeros((b, size, size, 3), np.float32)
    boxes = np.zeros((b, 1, 4), np.float32)
    for i in range(b):
        s = int(rng.integers(8, 14))
        y, x = (int(v) for v in rng.integers(12, size - 12 - s, 2))
        images[i, y:y + s, x:x + s] = 255.0
        boxes[i, 0] = (x, y, x + s, y + s)
    return images, boxes


@pytest.mark.parametrize("make", [
    lambda: L.Pipeline([L.RandomResizedCrop(40, 40, scale=(0.6, 1.0), ratio=(0.9, 1.1)),
                        L.RandomFlip("horizontal_and_vertical"),
                        L.RandomAffine(rotation=0.1, shear_x=0.1, fill_mode="constant"),
                        L.RandomBrightness(0.2), L.RandomCutout(0.2)],
                       seed=0, bounding_box_format="xyxy"),
    lambda: L.RandomChoice([L.RandomRotation(0.2, fill_mode="constant"),
                            L.RandomZoom(0.2, fill_mode="constant")],
                           seed=0, bounding_box_format="xyxy"),
    lambda: L.RandomOrder([L.RandomFlip(), L.RandomBrightness(0.1)], seed=0,
                          bounding_box_format="xyxy"),
    lambda: L.RandomApply(L.RandomRotation(0.2, fill_mode="constant"), rate=0.5, seed=0,
                          bounding_box_format="xyxy"),
])
def test_boxes_follow_the_composed_transform(make):
    images, boxes = _square_scene()
    layer = make()
    out = layer({"images": images, "bounding_boxes": {"boxes": boxes,
                                                       "labels": np.ones((16, 1), np.int32)}})
    got = out["bounding_boxes"]["boxes"].numpy()[:, 0]
    for i, image in enumerate(out["images"].numpy()):
        ys, xs = np.nonzero(image.min(axis=-1) > 100)
        if len(xs) == 0:
            continue
        x1, y1, x2, y2 = got[i]
        # the box encloses the square's pixels (1 px slack for bilinear edges)
        assert x1 - 1 <= xs.min() and xs.max() + 1 <= x2 + 1
        assert y1 - 1 <= ys.min() and ys.max() + 1 <= y2 + 1


def test_boxes_refused_by_a_member_are_refused_by_the_pipeline():
    pipe = L.Pipeline([L.RandomFlip(), L.AugMix()], bounding_box_format="xyxy")
    with pytest.raises(ValueError, match="AugMix"):
        pipe({"images": _images().numpy(), "bounding_boxes": {"boxes": np.zeros((8, 1, 4), np.float32),
                                                       "labels": np.zeros((8, 1), np.int32)}})


@pytest.mark.parametrize("outer", [None, "yxyx"])
def test_a_member_box_format_other_than_the_compositions_is_refused(outer):
    with pytest.raises(ValueError, match=r"'xyxy'.*" + repr(outer)):
        L.Pipeline([L.RandomFlip(bounding_box_format="xyxy")], bounding_box_format=outer)
    with pytest.raises(ValueError, match="bounding_box_format"):
        L.RandomApply(L.RandomFlip(bounding_box_format="xyxy"), bounding_box_format=outer)
    # members without a format, or with the composition's own, are fine
    L.Pipeline([L.RandomFlip(), L.RandomFlip(bounding_box_format="yxyx")],
               bounding_box_format="yxyx")
