"""The classifier `kaug train` trains from scratch when no pretrained backbone fits."""
from __future__ import annotations

import keras


def recipe_cnn(image_shape: tuple[int, int, int], num_classes: int, seed: int,
               width: int = 32, dropout: float = 0.3) -> keras.Model:
    """A small all-convolutional network with BatchNorm (input 0..255 float), logits out.

    Three stages at `width`, `2 * width`, `4 * width` filters; the last stage has two convs.
    BatchNorm is what separates it from the demo's `small_cnn`: with 100 images and thousands of
    steps it trains to a better optimum at a higher learning rate (measured, docs/train.md).
    Momentum 0.9 (Keras' default is 0.99): the moving statistics settle within the few hundred
    steps of a short run instead of leaving evaluation near chance.

    Args:
        image_shape: `(H, W, C)`.
        num_classes: outputs (logits).
        seed: initializer seed (`keras.utils.set_random_seed`).
        width: filters of the first stage.
        dropout: before the classification layer.

    Example:
        >>> recipe_cnn((32, 32, 1), 10, seed=0).output_shape
        (None, 10)
    """
    keras.utils.set_random_seed(seed)

    def block(x, filters):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        return keras.layers.Activation("relu")(x)

    inputs = keras.Input(image_shape)
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.MaxPooling2D()(block(x, width))
    x = keras.layers.MaxPooling2D()(block(x, 2 * width))
    x = block(block(x, 4 * width), 4 * width)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name="recipe_cnn")
