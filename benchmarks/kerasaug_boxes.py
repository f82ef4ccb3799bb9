"""KerasAug 1.1.1's boxes through flip, rotation, crop and resized crop at FIXED parameters.

Run in the separate KerasAug environment (PyPI `keras-aug` also imports as `keras_aug`, so it
cannot share ours):

    /work/venv-kerasaug/bin/python benchmarks/kerasaug_boxes.py benchmarks/results/kerasaug_boxes.npz

It writes the input boxes, the parameters and KerasAug's output boxes/classes; our side is
`tests/test_boxes.py::test_agreement_with_kerasaug`, which runs our layers on the same parameters
and prints the agreement (`-s`). The parameters are set by calling each layer's
`augment_bounding_boxes` with a transformation dict, so no randomness is involved.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

B, N, H, W = 8, 6, 48, 64  # non-square on purpose
CROP = (30, 40)  # (height, width) of RandomCrop and RandomResizedCrop
CROP_OFFSETS = [(0, 0), (5, 17), (18, 3), (11, 24)]  # (top, left): distinct on both axes


def inputs(rng: np.random.Generator):
    x1 = rng.uniform(0, W - 8, (B, N))
    y1 = rng.uniform(0, H - 8, (B, N))
    x2 = x1 + rng.uniform(4, 24, (B, N))
    y2 = y1 + rng.uniform(4, 20, (B, N))
    boxes = np.stack([x1, y1, np.minimum(x2, W), np.minimum(y2, H)], -1).astype("float32")
    classes = rng.integers(0, 5, (B, N)).astype("float32")
    return boxes, classes


def main(path: str) -> None:
    import keras_aug  # KerasAug 1.1.1 here
    from keras_aug.layers import vision
    from keras import ops

    rng = np.random.default_rng(0)
    boxes, classes = inputs(rng)
    images = np.zeros((B, H, W, 3), "float32")
    out = {"boxes": boxes, "classes": classes, "version": keras_aug.__version__}

    def run(layer, transformations, raw):
        bb = {"boxes": ops.convert_to_tensor(boxes), "classes": ops.convert_to_tensor(classes)}
        res = layer.augment_bounding_boxes(bb, transformations, images=raw, raw_images=raw)
        return np.asarray(res["boxes"]), np.asarray(res["classes"])

    flip = vision.RandomFlip("horizontal_and_vertical", p=0.5,
                                       bounding_box_format="xyxy")
    p_h = rng.uniform(size=B).astype("float32")
    p_v = rng.uniform(size=B).astype("float32")
    out["flip_horizontal"], out["flip_vertical"] = p_h < 0.5, p_v < 0.5
    out["flip_boxes"], out["flip_classes"] = run(
        flip, {"p_horizontal": ops.convert_to_tensor(p_h),
               "p_vertical": ops.convert_to_tensor(p_v)}, images)

    rotation = vision.RandomRotation(30, bounding_box_format="xyxy")
    degrees = rng.uniform(-30, 30, B).astype("float32")
    out["rotation_degrees"] = degrees
    out["rotation_boxes"], out["rotation_classes"] = run(
        rotation, {"angle": ops.convert_to_tensor(degrees)}, images)

    crop = vision.RandomCrop(CROP, bounding_box_format="xyxy")
    resized = vision.RandomResizedCrop(CROP, bounding_box_format="xyxy")
    crops, crop_classes, rcrops, rcrop_classes = [], [], [], []
    for top, left in CROP_OFFSETS:  # KerasAug draws one crop per batch
        b, c = run(crop, {"pad_top": 0, "pad_left": 0, "pad_bottom": 0, "pad_right": 0,
                          "crop_top": top, "crop_left": left}, images)
        crops.append(b), crop_classes.append(c)
        b, c = run(resized, {"top": top, "left": left, "height": 24, "width": 36}, images)
        rcrops.append(b), rcrop_classes.append(c)
    out["crop_offsets"] = np.array(CROP_OFFSETS)
    out["crop_size"] = np.array(CROP)
    out["crop_boxes"], out["crop_classes"] = np.stack(crops), np.stack(crop_classes)
    out["resized_crop_boxes"] = np.stack(rcrops)
    out["resized_crop_classes"] = np.stack(rcrop_classes)
    out["resized_crop_box"] = np.array([24, 36])  # the (height, width) cropped before resizing
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, **out)
    print(f"KerasAug {keras_aug.__version__}: wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/kerasaug_boxes.npz")
