"""Write docs/geometry_layers.png: every geometric layer on one real photo, 6 random draws each.

    python examples/geometry_gallery.py [--out docs/geometry_layers.png]

Each row is one layer; the first column is the input, the others six samples of the same batch
(every image of a batch gets its own parameters). Crops are resized back to the input size for
the picture only.
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
from keras_aug.viz import save_image_grid  # noqa: E402

SIZE = 96
LAYERS = [
    ("RandomFlip(h+v)", lambda: L.RandomFlip("horizontal_and_vertical", seed=1)),
    ("RandomRotation(0.1)", lambda: L.RandomRotation(0.1, seed=1)),
    ("RandomTranslation(0.2, 0.2)", lambda: L.RandomTranslation(0.2, 0.2, seed=1)),
    ("RandomZoom((-0.3, 0.3))", lambda: L.RandomZoom((-0.3, 0.3), seed=1)),
    ("RandomShear(0.3, 0.3)", lambda: L.RandomShear(0.3, 0.3, seed=1)),
    ("RandomAffine(all, constant)", lambda: L.RandomAffine(
        rotation=0.08, translate_x=0.1, translate_y=0.1, zoom_y=0.2, shear_x=0.2,
        fill_mode="constant", seed=1)),
    ("RandomPerspective(0.5)", lambda: L.RandomPerspective(0.5, seed=1)),
    ("RandomCrop(64, 64)", lambda: L.RandomCrop(64, 64, seed=1)),
    ("RandomResizedCrop(96, 96)", lambda: L.RandomResizedCrop(SIZE, SIZE, seed=1)),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/geometry_layers.png")
    args = parser.parse_args(argv)
    photo = np.asarray(Image.fromarray(skdata.astronaut()).resize((SIZE, SIZE), Image.BILINEAR))
    batch = np.repeat(photo[None].astype("float32"), 6, axis=0)
    tiles, titles = [], []
    for name, factory in LAYERS:
        out = factory()(batch)
        if out.shape[1] != SIZE:  # crops: back to the grid's tile size
            out = tf.image.resize(out, (SIZE, SIZE))
        out = np.asarray(out)
        tiles += [photo.astype("float32"), *out]
        titles += [name, *[""] * len(out)]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    print(save_image_grid(np.stack(tiles), args.out, titles=titles, ncols=7))


if __name__ == "__main__":
    main()
