"""Bounding boxes (Keras 3 format): conversion, every geometric layer, clipping/visibility, errors,
XLA, per-sample p, and agreement with Keras 3.15 and KerasAug 1.1.1 at fixed parameters."""
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.ops import boxes as box_ops
from keras_aug.ops import geometry as geo

H, W = 40, 56  # non-square on purpose (keras#23518 swaps the crop axes)
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")


def squares(n=6, seed=0, size=(12, 16)):
    """Black images, each with one bright rectangle; its box in xyxy pixel edges."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, H, W, 3), "float32")
    boxes = np.zeros((n, 2, 4), "float32")
    for i in range(n):
        top = rng.integers(12, H - 12 - size[0] + 1)
        left = rng.integers(14, W - 14 - size[1] + 1)
        x[i, top:top + size[0], left:left + size[1]] = 255.0
        boxes[i, 0] = [left, top, left + size[1], top + size[0]]
    labels = np.tile(np.array([[3, -1]], "int32"), (n, 1))  # the second box is padding
    return x, {"boxes": boxes, "labels": labels}


def found(image, threshold=127.5):
    """Enclosing xyxy box (pixel edges) of the bright pixels, or None."""
    rows, cols = np.nonzero(image.max(-1) > threshold)
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], "float32")


def fixed(layer, params):
    """Make `layer` use fixed parameters (tests pass parameters; the engine does the rest)."""
    layer.sample_params = lambda batch_size, images, draws: params
    return layer


def call(layer, x, bb, **kw):
    out = layer({"images": x, "bounding_boxes": bb}, **kw)
    return (np.asarray(out["images"]), np.asarray(out["bounding_boxes"]["boxes"]),
            np.asarray(out["bounding_boxes"]["labels"]))


# --------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt", box_ops.BOX_FORMATS)
def test_formats_match_keras_and_round_trip(fmt):
    from keras.utils import bounding_boxes as kbb

    xyxy = np.array([[[3.0, 5.0, 20.0, 31.0], [0.0, 1.5, 56.0, 40.0]]], "float32")
    ours = np.asarray(box_ops.convert_format(xyxy, "xyxy", fmt, height=H, width=W))
    theirs = np.asarray(kbb.convert_format(xyxy.copy(), "xyxy", fmt, height=H, width=W))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-5)
    back = np.asarray(box_ops.convert_format(ours, fmt.upper(), "xyxy", height=H, width=W))
    np.testing.assert_allclose(back, xyxy, atol=1e-4)
    keras_back = np.asarray(kbb.convert_format(theirs, fmt, "xyxy", height=H, width=W))
    np.testing.assert_allclose(back, keras_back, atol=1e-4)


# --------------------------------------------------------------------------- every geometric layer
WARPS = dict(interpolation="bilinear", fill_mode="constant", fill_value=0.0)
LAYERS = {
    "RandomFlip": lambda **k: L.RandomFlip("horizontal_and_vertical", **k),
    "RandomAffine": lambda **k: L.RandomAffine(rotation=0.08, translate_x=0.1, translate_y=0.1,
                                               zoom_y=0.2, shear_x=0.2, shear_y=0.1, **WARPS, **k),
    "RandomRotation": lambda **k: L.RandomRotation(0.12, **WARPS, **k),
    "RandomShear": lambda **k: L.RandomShear(0.3, 0.3, **WARPS, **k),
    "RandomTranslation": lambda **k: L.RandomTranslation(0.15, 0.15, **WARPS, **k),
    "RandomZoom": lambda **k: L.RandomZoom((-0.3, 0.3), **WARPS, **k),
    "RandomPerspective": lambda **k: L.RandomPerspective(0.4, **WARPS, **k),
    "RandomCrop": lambda **k: L.RandomCrop(30, 40, **k),
    "CenterCrop": lambda **k: L.CenterCrop(30, 44, **k),
    "RandomResizedCrop": lambda **k: L.RandomResizedCrop(32, 36, scale=(0.4, 1.0), **k),
    "RandAugment": lambda **k: L.RandAugment(2, 9, ops=GEOMETRIC, **k),
    "TrivialAugmentWide": lambda **k: L.TrivialAugmentWide(ops=GEOMETRIC, **k),
    "AutoAugment": lambda **k: L.AutoAugment({"sub_policies": [
        [["Rotate", 0.8, 8], ["ShearX", 0.7, 6]], [["TranslateY", 0.9, 7], ["Rotate", 0.6, 9]],
        [["ShearY", 0.8, 9], ["TranslateX", 0.8, 5]]]}, **k),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_box_encloses_the_bright_square_after_each_transform(name):
    x, bb = squares()
    layer = LAYERS[name](bounding_box_format="xyxy", seed=1)
    out, boxes, labels = call(layer, x, bb)
    changed = 0
    for i in range(len(x)):
        region = found(out[i])
        assert labels[i, 1] == -1 and np.all(boxes[i, 1] == 0), "padding stays padding"
        if region is None:  # the square left the image: so did its box
            assert labels[i, 0] == -1
            continue
        assert labels[i, 0] == 3, (i, boxes[i, 0], region)
        box = boxes[i, 0]
        # the box encloses the square (1 px for bilinear edges) and is tight (enclosing box of a
        # rotated rectangle: the square's found extent within 1.5 px)
        assert np.all(box[:2] <= region[:2] + 1.0) and np.all(box[2:] >= region[2:] - 1.0), (
            i, box, region)
        # a square cut by the border: the part outside can set the enclosing box's other extent
        clipped = box[0] <= 0 or box[1] <= 0 or box[2] >= out.shape[2] or box[3] >= out.shape[1]
        assert clipped or np.all(np.abs(box - region) <= 1.5), (i, box, region)
        changed += not np.allclose(box, bb["boxes"][i, 0])
    if name != "CenterCrop":
        assert changed >= 2  # the parameters are per sample and do move the boxes


def test_flips_are_exact_and_equal_keras():
    x, bb = squares(n=4)
    flips = tf.constant([True, False, True, False])
    layer = fixed(L.RandomFlip("horizontal", bounding_box_format="xyxy"),
                  {"horizontal": flips, "vertical": tf.zeros([4], tf.bool)})
    _, ours, labels = call(layer, x, bb)
    b = bb["boxes"][:, 0]
    mirrored = np.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], 1)
    expect = np.where(flips.numpy()[:, None], mirrored, b)
    np.testing.assert_array_equal(ours[:, 0], expect)
    keras_layer = keras.layers.RandomFlip("horizontal", bounding_box_format="xyxy")
    theirs = keras_layer.transform_bounding_boxes(
        {"boxes": tf.constant(bb["boxes"]), "labels": tf.constant(bb["labels"])},
        {"flips": tf.reshape(flips, [4, 1, 1, 1]), "input_shape": x.shape})  # as Keras draws it
    np.testing.assert_allclose(ours[:, 0], np.asarray(theirs["boxes"])[:, 0], atol=1e-4)
    vertical = fixed(L.RandomFlip("vertical", bounding_box_format="rel_yxyx"),
                     {"horizontal": tf.zeros([4], tf.bool), "vertical": flips})
    rel = np.asarray(box_ops.convert_format(bb["boxes"], "xyxy", "rel_yxyx", H, W))
    _, ours_v, _ = call(vertical, x, {"boxes": rel, "labels": bb["labels"]})
    back = np.asarray(box_ops.convert_format(ours_v, "rel_yxyx", "xyxy", H, W))[:, 0]
    mirrored = np.stack([b[:, 0], H - b[:, 3], b[:, 2], H - b[:, 1]], 1)
    expect = np.where(flips.numpy()[:, None], mirrored, b)
    np.testing.assert_allclose(back, expect, atol=1e-4)


def centroid(image):
    """Intensity centroid (x, y) in pixel-edge coordinates."""
    weight = image.max(-1)
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum() + 0.5


def test_rotation_follows_keras_images_and_keras_boxes_are_half_a_pixel_off():
    x, bb = squares(n=5)
    degrees = np.array([-30.0, -10.0, 0.0, 15.0, 40.0], "float32")
    matrix = geo.rotation_matrix(tf.constant(degrees * math.pi / 180.0), H, W)
    layer = fixed(L.RandomRotation(0.2, bounding_box_format="xyxy", **WARPS), {"matrix": matrix})
    _, ours, _ = call(layer, x, bb)
    keras_layer = keras.layers.RandomRotation(0.2, bounding_box_format="xyxy",
                                              fill_mode="constant")
    zeros, ones = tf.zeros([5]), tf.ones([5])
    transformation = {
        "angle": tf.constant(degrees), "image_height": H, "image_width": W, "batch_size": 5,
        "rotation_matrix": keras_layer._compute_affine_matrix(
            center_x=0.5, center_y=0.5, angle=tf.constant(degrees), translate_x=zeros,
            translate_y=zeros, scale=ones, shear_x=zeros, shear_y=zeros, height=H, width=W)}
    keras_images = np.asarray(keras_layer.transform_images(tf.constant(x), transformation))
    theirs = np.asarray(keras_layer.transform_bounding_boxes(
        {"boxes": tf.constant(bb["boxes"]), "labels": tf.constant(bb["labels"])},
        transformation)["boxes"])
    for i in range(5):  # our box is centred on the square Keras' own image shows
        np.testing.assert_allclose((ours[i, 0, :2] + ours[i, 0, 2:]) / 2, centroid(keras_images[i]),
                                   atol=0.01)
    # Keras' boxes have our size (same angle, same direction) but rotate about a centre half a
    # pixel off its images' (pixel-centre vs pixel-edge coordinates): shifted by
    # |(I - R) (0.5, 0.5)| = sqrt(2) sin(angle / 2) px
    size = lambda b: b[..., 2:] - b[..., :2]  # noqa: E731
    np.testing.assert_allclose(size(ours[:, 0]), size(theirs[:, 0]), atol=1e-3)
    shift = np.linalg.norm((ours[:, 0, :2] - theirs[:, 0, :2]), axis=-1)
    np.testing.assert_allclose(shift, np.sqrt(2) * np.abs(np.sin(np.radians(degrees) / 2)),
                               atol=1e-3)


def test_crop_offsets_follow_their_axes_on_non_square_images():
    """keras#23518: Keras 3.15's RandomCrop subtracts the row offset from x."""
    x, bb = squares(n=3)
    offsets = tf.constant([[2, 12], [9, 3], [5, 5]], tf.int32)  # (top, left)
    layer = fixed(L.RandomCrop(30, 40, bounding_box_format="xyxy"), {"boxes": offsets})
    out, ours, labels = call(layer, x, bb)
    b, o = bb["boxes"][:, 0], offsets.numpy().astype("float32")
    expect = b - np.stack([o[:, 1], o[:, 0], o[:, 1], o[:, 0]], 1)
    expect = np.clip(expect, 0, [40, 30, 40, 30])
    np.testing.assert_allclose(ours[:, 0], expect)
    for i in range(3):
        np.testing.assert_allclose(ours[i, 0], found(out[i]))  # exact: a crop is a gather
    # where the conventions agree (same offset on both axes) Keras gives the same boxes
    keras_layer = keras.layers.RandomCrop(30, 40, bounding_box_format="xyxy")
    theirs = keras_layer.transform_bounding_boxes(
        {"boxes": tf.constant(b[2:3, None]), "labels": tf.constant([[3]])}, (5, 5))
    np.testing.assert_allclose(ours[2, 0], np.asarray(theirs["boxes"])[0, 0])


# --------------------------------------------------------------------------- clip and visibility
def translate(dx, dy, **kw):
    matrix = geo.translation_matrix(tf.constant(dx, tf.float32), tf.constant(dy, tf.float32))
    layer = L.RandomTranslation(0.5, 0.5, bounding_box_format="xyxy", **kw)
    return fixed(layer, {"matrix": matrix})


def test_clipped_boxes_and_label_minus_one_when_a_box_leaves():
    x = np.zeros((3, H, W, 3), "float32")
    bb = {"boxes": np.tile(np.array([[[10.0, 10.0, 30.0, 20.0], [1.0, 2.0, 3.0, 4.0]]]), (3, 1, 1)),
          "labels": np.array([[1, -1], [2, -1], [4, 5]], "int64")}
    _, boxes, labels = call(translate([36.0, 60.0, -5.0], [0.0, 0.0, 25.0]), x, bb)
    np.testing.assert_allclose(boxes[0, 0], [46, 10, 56, 20])  # half out: clipped, kept
    assert labels[0, 0] == 1
    assert labels[1, 0] == -1 and np.all(boxes[1, 0] == 0)  # fully out: label -1, coordinates 0
    np.testing.assert_allclose(boxes[2], [[5, 35, 25, 40], [0, 0, 0, 0]])  # clipped; 2nd out
    assert labels[2].tolist() == [4, -1] and labels.dtype == np.int64
    assert np.all(labels[:2, 1] == -1) and np.all(boxes[:2, 1] == 0)  # input padding stays


@pytest.mark.parametrize("min_visibility, kept", [(0.0, True), (0.4, True), (0.6, False)])
def test_min_visibility(min_visibility, kept):
    x = np.zeros((1, H, W, 3), "float32")
    bb = {"boxes": np.array([[[10.0, 10.0, 30.0, 20.0]]]), "labels": np.array([[7]])}
    _, _, labels = call(translate([36.0], [0.0], min_visibility=min_visibility), x, bb)
    assert (labels[0, 0] == 7) == kept  # half of the box stays inside


# --------------------------------------------------------------------------- engine
def test_jit_equals_graph_and_runs_in_tf_data():
    x, bb = squares()
    for factory in (LAYERS["RandomAffine"], LAYERS["RandomPerspective"], LAYERS["RandAugment"],
                    LAYERS["RandomResizedCrop"]):
        compiled, plain = factory(bounding_box_format="center_xywh", seed=3), \
            factory(bounding_box_format="center_xywh", seed=3)
        plain.jit_compile = False
        cb = np.asarray(box_ops.convert_format(bb["boxes"], "xyxy", "center_xywh"))
        a = call(compiled, x, {"boxes": cb, "labels": bb["labels"]})
        b = call(plain, x, {"boxes": cb, "labels": bb["labels"]})
        np.testing.assert_allclose(a[1], b[1], atol=1e-3)
        np.testing.assert_array_equal(a[2], b[2])
    layer = L.RandomRotation(0.1, bounding_box_format="xyxy", seed=0)
    step = tf.function(lambda d: layer(d, training=True), jit_compile=True)
    out = step({"images": tf.constant(x), "bounding_boxes": bb})
    assert out["bounding_boxes"]["boxes"].shape == (6, 2, 4)
    ds = tf.data.Dataset.from_tensor_slices({"images": x, "bounding_boxes": bb}).batch(3)
    for element in ds.map(layer):
        assert element["bounding_boxes"]["labels"].shape == (3, 2)


def test_boxes_stay_with_their_images_under_per_sample_p():
    x, bb = squares(n=24, seed=2)
    for layer in (L.RandomAffine(rotation=0.1, translate_x=0.1, p=0.5, bounding_box_format="xyxy",
                                 seed=0, **WARPS),
                  L.RandomCrop(30, 40, p=0.5, bounding_box_format="xyxy", seed=0)):
        out, boxes, labels = call(layer, x, bb)
        untouched = 0
        for i in range(len(x)):
            region = found(out[i])
            assert region is not None and labels[i, 0] == 3
            assert np.all(np.abs(boxes[i, 0] - region) <= 1.5), (type(layer).__name__, i)
            untouched += np.array_equal(boxes[i, 0], bb["boxes"][i, 0])
        if isinstance(layer, L.RandomAffine):
            assert 4 < untouched < 20


def test_single_image_masks_and_inference_crop():
    x, bb = squares(n=1)
    masks = (x[..., :1] > 0).astype("int32")
    layer = L.RandomRotation(0.1, bounding_box_format="xyxy", seed=0, **WARPS)
    out = layer({"images": x[0], "segmentation_masks": masks[0],
                 "bounding_boxes": {k: v[0] for k, v in bb.items()}})
    assert out["bounding_boxes"]["boxes"].shape == (2, 4) and out["images"].shape == (H, W, 3)
    mask_box = found(np.asarray(out["segmentation_masks"]) * 255.0)
    assert np.all(np.abs(np.asarray(out["bounding_boxes"]["boxes"])[0] - mask_box) <= 1.5)
    crop = L.RandomCrop(30, 40, bounding_box_format="xyxy")  # inference: the centre crop
    out = crop({"images": x, "bounding_boxes": bb}, training=False)
    np.testing.assert_allclose(np.asarray(out["bounding_boxes"]["boxes"])[0, 0],
                               found(np.asarray(out["images"])[0]))


def test_colour_and_erasing_layers_return_boxes_unchanged():
    x, bb = squares(n=2)
    bb["boxes"][0, 0] = [-5, -5, 80, 80]  # not even clipped: these layers do not touch boxes
    for layer in (L.RandomBrightness(0.3, seed=0), L.RandomErasing(seed=0), L.RandomInvert()):
        _, boxes, labels = call(layer, x, bb)
        np.testing.assert_array_equal(boxes, bb["boxes"])
        np.testing.assert_array_equal(labels, bb["labels"])


def test_config_keeps_box_arguments():
    layer = L.RandomZoom(0.2, bounding_box_format="REL_XYWH", min_visibility=0.25)
    config = layer.get_config()
    assert config["bounding_box_format"] == "rel_xywh" and config["min_visibility"] == 0.25
    assert L.RandomZoom.from_config(config).get_config() == config


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("layer, message", [
    (lambda: L.MixUp(num_classes=5, bounding_box_format="xyxy"), "MixUp cannot transform"),
    (lambda: L.CutMix(num_classes=5, bounding_box_format="xyxy"), "CutMix cannot transform"),
    (lambda: L.AugMix(bounding_box_format="xyxy"), "AugMix cannot transform"),
    (lambda: L.RandomFlip(), "bounding_box_format=None"),
    (lambda: L.RandomCrop(30, 40), "bounding_box_format=None"),
])
def test_layers_that_cannot_transform_boxes_raise(layer, message):
    x, bb = squares(n=2)
    with pytest.raises(ValueError, match=message):
        layer()({"images": x, "labels": np.array([0, 1]), "bounding_boxes": bb})


def test_bad_box_arguments_and_inputs():
    with pytest.raises(ValueError, match="bounding_box_format must be one of"):
        L.RandomFlip(bounding_box_format="ltrb")
    with pytest.raises(ValueError, match="min_visibility"):
        L.RandomFlip(bounding_box_format="xyxy", min_visibility=1.5)
    layer = L.RandomFlip(bounding_box_format="xyxy")
    x, bb = squares(n=2)
    bad = [
        ({"boxes": bb["boxes"][..., :3], "labels": bb["labels"]}, r"must have shape \(B, N, 4\)"),
        ({"boxes": bb["boxes"][0], "labels": bb["labels"][0]}, r"must have shape \(B, N, 4\)"),
        ({"boxes": bb["boxes"], "labels": bb["labels"][:, :1]}, r"labels'\] must have shape"),
        ({"boxes": bb["boxes"][:1], "labels": bb["labels"][:1]}, "batch size"),
        ({"boxes": bb["boxes"]}, "must be a dict with 'boxes'"),
    ]
    for value, message in bad:
        with pytest.raises(ValueError, match=message):
            layer({"images": x, "bounding_boxes": value})


# --------------------------------------------------------------------------- KerasAug agreement
KERASAUG = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "results",
                        "kerasaug_boxes.npz")


def _agreement(ours, ours_labels, theirs, their_labels, atol=1e-3):
    """Fraction of valid boxes (in both) that agree within atol, and of labels that agree."""
    valid = (ours_labels >= 0) & (their_labels >= 0)
    close = np.all(np.abs(ours - theirs) <= atol, axis=-1)
    return float(close[valid].mean()), float(((ours_labels >= 0) == (their_labels >= 0)).mean())


@pytest.mark.skipif(not os.path.exists(KERASAUG), reason="run benchmarks/kerasaug_boxes.py first")
def test_agreement_with_kerasaug():
    ref = np.load(KERASAUG)
    boxes, classes = ref["boxes"], ref["classes"].astype("int32")
    b, h, w = boxes.shape[0], 48, 64
    x = np.zeros((b, h, w, 3), "float32")
    bb = {"boxes": boxes, "labels": classes}
    report = {}
    vertical = ref["flip_vertical"]
    flip = fixed(L.RandomFlip("horizontal_and_vertical", bounding_box_format="xyxy"),
                 {"horizontal": tf.constant(ref["flip_horizontal"]),
                  "vertical": tf.constant(vertical)})
    _, ours, labels = call(flip, x, bb)
    theirs = ref["flip_boxes"]
    report["flip x"] = _agreement(ours[..., ::2], labels, theirs[..., ::2], ref["flip_classes"])
    report["flip y"] = _agreement(ours[..., 1::2], labels, theirs[..., 1::2], ref["flip_classes"])
    # KerasAug 1.1.1 flips y as `width - y` (not `height - y`): off by H - W on non-square images
    np.testing.assert_allclose(ours[vertical][..., 1::2] - theirs[vertical][..., 1::2], h - w,
                               atol=1e-4)
    # KerasAug's positive degrees turn clockwise, ours (and Keras') counter-clockwise
    angles = tf.constant(-ref["rotation_degrees"] * math.pi / 180.0)
    rotation = fixed(L.RandomRotation(0.1, bounding_box_format="xyxy"),
                     {"matrix": geo.rotation_matrix(angles, h, w)})
    _, ours, labels = call(rotation, x, bb)
    report["rotation"] = _agreement(ours, labels, ref["rotation_boxes"], ref["rotation_classes"])
    ch, cw = ref["crop_size"]
    rh, rw = ref["resized_crop_box"]
    for name, theirs, their_labels in (("crop", ref["crop_boxes"], ref["crop_classes"]),
                                       ("resized_crop", ref["resized_crop_boxes"],
                                        ref["resized_crop_classes"])):
        results = []
        for k, (top, left) in enumerate(ref["crop_offsets"]):
            if name == "crop":
                layer = fixed(L.RandomCrop(int(ch), int(cw), bounding_box_format="xyxy"),
                              {"boxes": tf.constant([[top, left]] * b, tf.int32)})
            else:
                layer = fixed(L.RandomResizedCrop(int(ch), int(cw), bounding_box_format="xyxy"),
                              {"boxes": tf.constant([[top, left, rh, rw]] * b, tf.float32)})
            _, ours, labels = call(layer, x, bb)
            results.append(_agreement(ours, labels, theirs[k], their_labels[k].astype("int32")))
        report[name] = tuple(float(np.mean(r)) for r in zip(*results))
    print(f"\nagreement with KerasAug {ref['version']} (boxes within 1e-3 px, label validity):")
    for name, (box_share, label_share) in report.items():
        print(f"  {name:13s} boxes {box_share:6.1%}  labels {label_share:6.1%}")
    vertical_share = vertical.mean()
    assert abs(report["flip y"][0] - (1 - vertical_share)) < 0.2  # the rows KerasAug flips wrong
    for name in ("flip x", "crop", "resized_crop", "rotation"):
        assert report[name][0] >= 0.99 and report[name][1] >= 0.99, (name, report[name])
