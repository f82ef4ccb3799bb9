"""The child model every search arm trains: the demo's small CNN, one budget for all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy
from keras_aug.core.validation import check_integer, check_number


@dataclass(frozen=True)
class ChildConfig:
    """How a child model trains: optimizer steps, batch size, Adam's learning rate.

    Args:
        steps: optimizer steps of one training run.
        batch_size: images per step.
        learning_rate: Adam's learning rate.
        jit_compile: compile the train step with XLA (faster from ~200 steps on).

    Example:
        >>> ChildConfig(steps=200).batch_size
        25
    """

    steps: int = 400
    batch_size: int = 25
    learning_rate: float = 1e-3
    jit_compile: bool = True

    def __post_init__(self):
        check_integer("steps", self.steps)
        check_integer("batch_size", self.batch_size)
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)


def small_cnn(image_shape, num_classes: int, seed: int) -> keras.Model:
    """3 conv blocks + dropout: the demo's and the search's classifier (0..255 float input).

    Args:
        image_shape: `(H, W, C)`.
        num_classes: outputs (logits).
        seed: initializer seed (`keras.utils.set_random_seed`).

    Example:
        >>> small_cnn((32, 32, 1), 10, seed=0).output_shape
        (None, 10)
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(128, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(num_classes),
        ],
        name="small_cnn",
    )


def compile_child(model: keras.Model, config: ChildConfig) -> keras.Model:
    """Adam + cross-entropy accepting integer or soft labels (mixing layers), accuracy."""
    model.compile(keras.optimizers.Adam(config.learning_rate), loss=LabelCrossentropy(),
                  metrics=[LabelAccuracy()], jit_compile=config.jit_compile)
    return model


def train_child(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    config: ChildConfig,
    seed: int,
    augment: Callable | None = None,
    *,
    epochs: int = 1,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    model: keras.Model | None = None,
) -> tuple[keras.Model, dict]:
    """Train `small_cnn` (or `model`) for `config.steps` steps split into `epochs` epochs, with
    `augment` applied to each batch in tf.data; returns the model and `History.history`.

    Args:
        images, labels: uint8 images and integer labels.
        num_classes: classes.
        config: the training budget.
        seed: model initialization and shuffling seed.
        augment: a keras_aug layer (or any batch callable) run in the input pipeline.
        epochs: epochs the steps are split into (callbacks see epoch boundaries).
        validation: `(images, labels)` evaluated after each epoch.
        callbacks: passed to `fit`.
        model: continue training this compiled model instead of a new one.

    Example:
        >>> x, y = np.zeros((20, 8, 8, 1), np.uint8), np.arange(20) % 2
        >>> model, history = train_child(x, y, 2, ChildConfig(steps=2, jit_compile=False), 0)
    """
    from keras_aug.data import make_pipeline

    if model is None:
        model = compile_child(small_cnn(images.shape[1:], num_classes, seed), config)
    ds = make_pipeline(tf.data.Dataset.from_tensor_slices((images, labels)), augment=augment,
                       batch_size=config.batch_size, repeat=True, seed=seed)
    val = None
    if validation is not None:
        val = tf.data.Dataset.from_tensor_slices(
            (validation[0].astype(np.float32), validation[1])).batch(256)
    history = model.fit(ds, epochs=epochs, steps_per_epoch=max(1, config.steps // epochs),
                        validation_data=val, callbacks=list(callbacks), verbose=0,
                        shuffle=False)  # make_pipeline shuffles
    return model, history.history


def accuracy(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of `model` on un-augmented `images`."""
    logits = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == labels))


class DensityScorer:
    """Fast AutoAugment's score of a candidate policy against a model trained without it: each
    held-out image is augmented `draws` times and keeps its best draw (the highest probability
    of its true class, and whether any draw is classified right); the score is the mean of that
    probability. One compiled program serves every candidate: `layer.policy = candidate` only
    swaps the table the program reads.

    Args:
        model: the fold model (trained on the fold's other part, without augmentation).
        layer: an `AutoAugment` whose policy is set per candidate (`SearchSpace.layer()`).
        images, labels: the held-out part of the fold.
        draws: augmented copies per image.

    Example:
        >>> scorer = DensityScorer(model, space.layer(seed=0), x_held, y_held)  # doctest: +SKIP
        >>> probability, accuracy = scorer(candidate_policy, seed=3)            # doctest: +SKIP
    """

    def __init__(self, model: keras.Model, layer, images: np.ndarray, labels: np.ndarray,
                 draws: int = 4):
        self.model, self.layer = model, layer
        self.draws = check_integer("draws", draws)
        self._images = tf.constant(np.tile(images.astype(np.float32), (draws, 1, 1, 1)))
        self._labels = tf.constant(np.tile(labels.astype(np.int32), draws))
        self._n = len(images)

    @tf.function(reduce_retracing=True)
    def _score(self, images, labels):
        augmented = self.layer(images, training=True)
        probs = tf.nn.softmax(self.model(augmented, training=False), axis=-1)
        true = tf.gather(probs, labels, batch_dims=1)
        right = tf.cast(tf.argmax(probs, -1, output_type=tf.int32) == labels, tf.float32)
        true = tf.reduce_max(tf.reshape(true, [self.draws, self._n]), axis=0)
        right = tf.reduce_max(tf.reshape(right, [self.draws, self._n]), axis=0)
        return tf.reduce_mean(true), tf.reduce_mean(right)

    def __call__(self, policy, seed: int) -> tuple[float, float]:
        """(mean best true-class probability, accuracy of the best draw) of `policy`."""
        self.layer.policy = policy
        self.layer.reseed(seed)
        probability, right = self._score(self._images, self._labels)
        return float(probability), float(right)
