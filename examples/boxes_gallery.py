"""Write docs/boxes.png: bounding boxes through the geometric layers and a policy, on one photo.

    python examples/boxes_gallery.py [--out docs/boxes.png]

scikit-image's astronaut (non-square, 160 x 192) with four boxes (face, rocket, mission patch,
helmet). Each row is one layer: the input, then six samples of the same batch (every image gets
its own parameters); boxes are drawn from the layer's output `bounding_boxes`, and a box that left
the image (label -1) is not drawn.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from keras_aug.viz import draw_boxes, save_image_grid  # noqa: E402

H, W = 160, 192
# xyxy on the 512 x 427 top of the photo: face, rocket, mission patch, helmet
BOXES_512 = np.array([[170, 40, 300, 190], [356, 0, 464, 280], [136, 350, 210, 424],
                      [280, 340, 512, 427]], np.float32)
FMT = {"bounding_box_format": "xyxy"}
LAYERS = [
    ("RandomFlip(h+v)", lambda: L.RandomFlip("horizontal_and_vertical", seed=1, **FMT)),
    ("RandomRotation(0.1)", lambda: L.RandomRotation(0.1, fill_mode="constant", seed=1, **FMT)),
    ("RandomAffine(all)", lambda: L.RandomAffine(
        rotation=0.08, translate_x=0.15, translate_y=0.15, zoom_y=0.2, shear_x=0.2,
        fill_mode="constant", seed=1, **FMT)),
    ("RandomPerspective(0.5)", lambda: L.RandomPerspective(0.5, seed=1, **FMT)),
    ("RandomResizedCrop, min_vis 0.25", lambda: L.RandomResizedCrop(
        H, W, scale=(0.25, 1.0), min_visibility=0.25, seed=1, **FMT)),
    ("RandAugment(2, 9)", lambda: L.RandAugment(2, 9, seed=2, **FMT)),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/boxes.png")
    args = parser.parse_args(argv)
    photo = skdata.astronaut()[:427]
    photo = np.asarray(Image.fromarray(photo).resize((W, H), Image.BILINEAR)).astype("float32")
    scale = np.array([W / 512, H / 427, W / 512, H / 427], np.float32)
    boxes = np.repeat((BOXES_512 * scale)[None], 6, axis=0)
    labels = np.repeat(np.arange(4, dtype=np.int32)[None], 6, axis=0)
    batch = {"images": np.repeat(photo[None], 6, axis=0),
             "bounding_boxes": {"boxes": boxes, "labels": labels}}
    original = draw_boxes(photo[None], boxes[:1], labels[:1])[0]
    tiles, titles = [], []
    for name, factory in LAYERS:
        out = factory()(batch)
        drawn = draw_boxes(np.asarray(out["images"]), np.asarray(out["bounding_boxes"]["boxes"]),
                           np.asarray(out["bounding_boxes"]["labels"]))
        tiles += [original, *drawn]
        titles += [name, *[""] * len(drawn)]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    print(save_image_grid(np.stack(tiles), args.out, titles=titles, ncols=7))


if __name__ == "__main__":
    main()
