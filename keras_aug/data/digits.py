"""scikit-learn's `load_digits` (1797 real 8x8 handwritten digits) as a TFDS builder.

Works offline: the data ships inside scikit-learn. Importing this module registers the builder,
so `tfds.load("digits", data_dir=...)` works. The split is fixed: the first 1000 images train,
the last 797 test (the order scikit-learn ships them in).
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

TRAIN_SIZE = 1000
NUM_CLASSES = 10


def digits_arrays(size: int = 32, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as uint8 images (N, size, size, channels) in 0..255 and int64 labels.

    Args:
        size: image side; 8 keeps scikit-learn's originals, other sizes are bilinear upsampled.
        channels: 1 (grey) or 3 (the grey value repeated).

    Example:
        >>> images, labels = digits_arrays(size=32, channels=1)
        >>> images.shape, images.dtype, labels[:5].tolist()
        ((1797, 32, 32, 1), dtype('uint8'), [0, 1, 2, 3, 4])
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    if size != 8:
        images = np.stack(
            [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images]
        )
    images = np.repeat(images[..., None], channels, axis=-1)
    return images, bunch.target.astype(np.int64)


class DigitsConfig(tfds.core.BuilderConfig):
    def __init__(self, *, size: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.size = size
        self.channels = channels


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn digits as a TFDS builder: `digits/gray32` (default), `digits/rgb32`, `digits/gray8`.

    Registered when `keras_aug.data` is imported, so `tfds.load("digits")` works offline. Splits:
    `train` (the first 1000 images) and `test` (the last 797).

    Args:
        config: a builder config name, `"gray32"`, `"rgb32"` or `"gray8"`.
        data_dir: where TFDS prepares the dataset (TFDS' default otherwise).

    Example:
        >>> import tensorflow_datasets as tfds
        >>> builder = tfds.builder("digits/rgb32")
        >>> builder.info.features["image"].shape
        (32, 32, 3)
    """

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [
        DigitsConfig(name="gray32", size=32, channels=1, description="32x32x1, bilinear upsampled"),
        DigitsConfig(name="rgb32", size=32, channels=3, description="32x32x3, grey repeated"),
        DigitsConfig(name="gray8", size=8, channels=1, description="original 8x8x1"),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        return self.dataset_info_from_configs(
            description="scikit-learn's 1797 handwritten digits (UCI optdigits test set).",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(c.size, c.size, c.channels)),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        )

    def _split_generators(self, dl_manager):
        images, labels = digits_arrays(self.builder_config.size, self.builder_config.channels)
        return {
            "train": self._generate_examples(images[:TRAIN_SIZE], labels[:TRAIN_SIZE], 0),
            "test": self._generate_examples(images[TRAIN_SIZE:], labels[TRAIN_SIZE:], TRAIN_SIZE),
        }

    def _generate_examples(self, images, labels, offset):
        for i, (image, label) in enumerate(zip(images, labels)):
            yield offset + i, {"image": image, "label": int(label)}
