"""keras_aug's own rows of `kaug demo` (other packages add theirs the same way)."""
from __future__ import annotations

import keras

from keras_aug.demo import DemoRow


def keras_builtin(seed: int) -> keras.Sequential:
    """Keras' own layers at the strength measured to help on digits (anchors.md)."""
    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.08, seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed),
            keras.layers.RandomZoom(0.15, seed=seed),
        ],
        name="keras_builtin",
    )


def export_augmentation(seed: int = 0) -> keras.layers.Layer:
    """The keras_aug pipeline placed inside the exported demo model."""
    from keras_aug.layers import RandomFlip

    return keras.Sequential([RandomFlip("horizontal", seed=seed)], name="keras_aug_basic")


def demo_rows() -> list[DemoRow]:
    return [
        DemoRow("no augmentation"),
        DemoRow("Keras built-in (rotation+translation+zoom)", augment=keras_builtin),
    ]
