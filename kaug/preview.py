"""`kaug preview`: a PNG grid of what a layer or policy does to real images."""
from __future__ import annotations

import json

import numpy as np

import keras_aug.layers as layers


def load_preview_images(image: str, size: int | None = None, n: int = 16):
    """`astronaut` / `coffee` / `chelsea` (scikit-image photos), `digits`, or an image file path.

    Returns (uint8 images (n, H, W, C), int labels (n,), num_classes). A single photo is repeated n
    times so that the grid shows the spread of one layer's random parameters.
    """
    from PIL import Image

    if image == "digits":
        from keras_aug.data import digits_arrays

        x, y = digits_arrays(size or 32, 3)
        return x[-n:], y[-n:], 10
    if image in ("astronaut", "coffee", "chelsea"):
        from skimage import data as skdata

        photo = getattr(skdata, image)()
    else:
        try:
            with Image.open(image) as im:
                photo = np.asarray(im.convert("RGB"))
        except (FileNotFoundError, OSError) as err:
            raise ValueError(
                f"--image must be astronaut, coffee, chelsea, digits or an image file; {err}"
            ) from None
    size = size or 128
    photo = np.asarray(Image.fromarray(photo).resize((size, size), Image.BILINEAR))
    return np.repeat(photo[None], n, axis=0), np.arange(n) % 2, 2


def make_layer(name: str | None, policy: str | None, args: str | None):
    """Instantiate `keras_aug.layers.<name>(**json args)` or `keras_aug.policies.from_spec(policy)`."""
    kwargs = json.loads(args) if args else {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"--args must be a JSON object such as '{{\"factor\": 0.2}}', got {args!r}")
    if policy:
        from keras_aug import policies

        return policies.from_spec(policy, **kwargs)
    if name not in layers.__all__:
        raise ValueError(f"Unknown layer {name!r}. Available: {', '.join(sorted(layers.__all__))}")
    return getattr(layers, name)(**kwargs)


def preview(layer, images: np.ndarray, labels: np.ndarray, num_classes: int, path: str,
            seed: int = 0) -> str:
    """Write originals (first row) and augmented images; mixing layers show label weights."""
    from keras_aug import viz

    x = images.astype("float32")
    n = min(8, len(x))
    if getattr(layer, "mixes_labels", False):
        onehot = np.eye(num_classes, dtype="float32")[labels]
        out, soft = layer((x, onehot))
        soft = np.asarray(soft)
        titles = [", ".join(f"{c}:{soft[i, c]:.2f}" for c in np.argsort(-soft[i])[:2] if soft[i, c] > 0)
                  for i in range(len(x))]
    else:
        out = layer(x)
        titles = [""] * len(x)
    out = np.asarray(out)
    grid = np.concatenate([x[:n], out])
    return viz.save_image_grid(grid, path, titles=["original"] * n + titles, ncols=8,
                               suptitle=f"{layer.__class__.__name__}: first row original")
