"""Write docs/color_layers.png: every colour layer on four real photos (scikit-image's bundled ones).

    python examples/color_gallery.py [--out docs/color_layers.png]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from keras_aug.viz import save_image_grid  # noqa: E402

LAYERS = [
    ("RandomBrightness(0.5)", lambda: L.RandomBrightness(0.5, seed=1)),
    ("RandomContrast(0.6)", lambda: L.RandomContrast(0.6, seed=1)),
    ("RandomSaturation((0, 1))", lambda: L.RandomSaturation((0.0, 0.9), seed=1)),
    ("RandomHue(0.5)", lambda: L.RandomHue(0.5, seed=1)),
    ("RandomColorJitter", lambda: L.RandomColorJitter((0, 255), 0.3, 0.3, (0.2, 0.8), 0.2, seed=1)),
    ("RandomGrayscale(p=1)", lambda: L.RandomGrayscale(p=1.0)),
    ("RandomInvert(p=1)", lambda: L.RandomInvert(p=1.0)),
    ("RandomSolarize", lambda: L.RandomSolarize(0.1, (0.4, 0.8), seed=1)),
    ("RandomPosterize((1, 3))", lambda: L.RandomPosterize((1, 3), seed=1)),
    ("RandomEqualize", lambda: L.RandomEqualize()),
    ("RandomAutoContrast", lambda: L.RandomAutoContrast()),
    ("RandomSharpness((0, 1))", lambda: L.RandomSharpness((0.0, 1.0), seed=1)),
    ("RandomGaussianBlur((1, 3))", lambda: L.RandomGaussianBlur((1.0, 3.0), seed=1)),
]


def photos(size: int = 96) -> np.ndarray:
    loads = (skdata.astronaut, skdata.coffee, skdata.chelsea, skdata.rocket)
    return np.stack([np.asarray(Image.fromarray(f()).resize((size, size), Image.BILINEAR)) for f in loads])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/color_layers.png")
    args = parser.parse_args(argv)
    x = photos()
    tiles, titles = [x], ["original", "", "", ""]
    for name, build in LAYERS:
        tiles.append(np.asarray(build()(x)))
        titles += [name, "", "", ""]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    path = save_image_grid(np.concatenate(tiles), args.out, titles=titles, ncols=4)
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)  # ~4x smaller file
    print(path)


if __name__ == "__main__":
    main()
