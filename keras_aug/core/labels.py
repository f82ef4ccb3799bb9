"""Class labels in either form: integer class ids `(B,)` / `(B, 1)`, or one-hot / soft rows
`(B, K)` (what the mixing layers return). One place decides which form a tensor is, so losses,
metrics, attacks and evaluation agree.

The form is read from the shape, not the dtype: Keras casts `y_true` to the loss dtype before a
loss sees it, so integer ids reach a loss as floats.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def is_soft(labels, num_classes: int | None = None) -> bool:
    """True for one-hot / soft rows: rank >= 2 with a last axis of `num_classes` entries (any
    size but 1 when `num_classes` is None); False for class ids `(B,)` or `(B, 1)`."""
    shape = tf.TensorShape(np.shape(labels) if isinstance(labels, np.ndarray) else labels.shape)
    if shape.rank is None or shape.rank < 2:
        return False
    last = shape[-1]
    return last == num_classes if num_classes is not None else last != 1


def class_ids(labels) -> tf.Tensor:
    """int64 class ids `(B,)` from either form (argmax of soft rows)."""
    labels = tf.convert_to_tensor(labels)
    if is_soft(labels):
        return tf.argmax(labels, axis=-1)
    return tf.cast(tf.reshape(labels, [-1]), tf.int64)


def one_hot(labels, num_classes: int) -> tf.Tensor:
    """float32 rows `(B, num_classes)` from either form (soft rows pass through, cast)."""
    labels = tf.convert_to_tensor(labels)
    if is_soft(labels, num_classes):
        return tf.cast(labels, tf.float32)
    return tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes, dtype=tf.float32)


def cross_entropy(labels, outputs, from_logits: bool) -> tf.Tensor:
    """Per-sample cross-entropy `(B,)` of `outputs` `(B, K)` for labels in either form."""
    outputs = tf.cast(outputs, tf.float32)
    labels = tf.convert_to_tensor(labels)
    if is_soft(labels, outputs.shape[-1]):
        return keras.losses.categorical_crossentropy(
            tf.cast(labels, tf.float32), outputs, from_logits=from_logits)
    return keras.losses.sparse_categorical_crossentropy(
        tf.reshape(labels, [-1]), outputs, from_logits=from_logits)


def accuracy(labels, outputs) -> tf.Tensor:
    """Per-sample float32 correctness `(B,)`: argmax of `outputs` against the labels' class."""
    predicted = tf.argmax(outputs, axis=-1)
    return tf.cast(tf.equal(class_ids(labels), predicted), tf.float32)


@keras.saving.register_keras_serializable(package="keras_aug")
class LabelCrossentropy(keras.losses.Loss):
    """Cross-entropy that takes integer or one-hot / soft labels, so one compiled model trains
    with and without a mixing layer in its input pipeline.

    Args:
        from_logits: whether the model outputs logits (default) or probabilities.
    """

    def __init__(self, from_logits: bool = True, name: str = "label_crossentropy", **kwargs):
        if not isinstance(from_logits, bool):
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        return cross_entropy(y_true, y_pred, self.from_logits)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_aug")
class LabelAccuracy(keras.metrics.MeanMetricWrapper):
    """Accuracy for integer or one-hot / soft labels (the class of a soft row is its argmax)."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


__all__ = ["LabelAccuracy", "LabelCrossentropy", "accuracy", "class_ids", "cross_entropy",
           "is_soft", "one_hot"]
