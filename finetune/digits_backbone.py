"""`DigitsCNN04`: a small BatchNorm CNN pretrained here on digits 0-4 only (train split).

It lets the toolkit show transfer offline and inside `kaug demo`'s time budget: the shipped file
(`finetune/weights/digits04_cnn.weights.h5`, ~1 MB) was made by `examples/pretrain_digits_backbone.py`
from the 0-4 images of the digits *train* split (no test image, no label of digits 5-9). BatchNorm
momentum is 0.9 because a few hundred pretraining steps never converge Keras' default 0.999.
"""
from __future__ import annotations

import os

import keras

from finetune.registry import REGISTRY, BackboneSpec, register_backbone

NAME = "DigitsCNN04"
WEIGHTS_PATH = os.path.join(os.path.dirname(__file__), "weights", "digits04_cnn.weights.h5")


def digits_cnn(weights=None, include_top=False, input_shape=(32, 32, 3), classes=5, **kwargs):
    """Three conv stages (32, 64, 128 filters) with BatchNorm; `keras.applications`-style call."""
    if kwargs:
        raise TypeError(f"digits_cnn got unexpected arguments {sorted(kwargs)}")
    if weights not in (None,) and not os.path.isfile(str(weights)):
        raise ValueError(f"weights must be None or a weights file, got {weights!r}")
    inputs = keras.Input(input_shape, name="input")
    x = inputs
    for stage, filters in enumerate((32, 64, 128), 1):
        for i in (1, 2):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    name=f"stage{stage}_conv{i}")(x)
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn{i}")(x)
            x = keras.layers.ReLU(name=f"stage{stage}_relu{i}")(x)
        if stage < 3:
            x = keras.layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    model = keras.Model(inputs, x, name="digits_cnn04")
    if weights is not None:
        model.load_weights(weights)
    return model


def register() -> None:
    if NAME not in REGISTRY:
        register_backbone(BackboneSpec(
            NAME, digits_cnn, "tf", 32, 32, "custom",
            description="small BN CNN pretrained on digits 0-4 (train split), shipped weights",
            pretrained_path=WEIGHTS_PATH if os.path.isfile(WEIGHTS_PATH) else None,
        ))
