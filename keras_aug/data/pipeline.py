"""The tf.data pipeline builder: cache -> shuffle -> batch -> augment (parallel map) -> prefetch."""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

from keras_aug.core.validation import check_integer


def make_pipeline(
    ds: tf.data.Dataset,
    *,
    augment: Callable | None = None,
    batch_size: int = 32,
    shuffle: bool | int = True,
    cache: bool = True,
    prefetch: bool = True,
    repeat: bool = False,
    dtype: str | None = "float32",
    drop_remainder: bool = False,
    seed: int | None = None,
    reproducible: bool = False,
) -> tf.data.Dataset:
    """Batch `(image, label)` pairs and augment whole batches in a parallel `map`.

    Args:
        ds: unbatched `(image, label)` dataset, e.g. from `load_dataset`.
        augment: a callable applied to each batch. keras_aug layers receive `(images, labels)` so
            labels follow (mixing changes them); any other callable (e.g. Keras' own layers)
            receives `images` only.
        batch_size: images per batch.
        shuffle: `True` shuffles with a buffer holding the whole cached dataset, an int sets the
            buffer size, `False` keeps the order. Reshuffled every epoch.
        cache: cache the decoded, un-augmented examples in memory.
        prefetch: overlap preprocessing with training.
        repeat: repeat forever (use with `steps_per_epoch`).
        dtype: cast images to this dtype before augmenting (`None` keeps uint8).
        drop_remainder: drop the last partial batch.
        seed: shuffle seed.
        reproducible: augment batches one after another, so that a seeded augmentation gives
            every batch the same draws in every run. Parallel calls take the layer's random
            keys in whatever order they happen to run: the same set of draws, assigned to
            different batches from run to run. Costs little when training, not augmentation,
            is the bottleneck (prefetch still overlaps the two).

    Example:
        >>> train = make_pipeline(few_shot(load_dataset("digits").train, 10),
        ...                       augment=keras_aug.layers.RandomAffine(rotation=0.1))
    """
    check_integer("batch_size", batch_size)
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = shuffle if not isinstance(shuffle, bool) else _cardinality_or(ds, 10_000)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if dtype is not None:
        ds = ds.map(lambda x, y: (tf.cast(x, dtype), y), num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        calls = None if reproducible else tf.data.AUTOTUNE
        if getattr(augment, "takes_labels", False):
            ds = ds.map(lambda x, y: augment((x, y)), num_parallel_calls=calls)
        else:
            ds = ds.map(lambda x, y: (augment(x), y), num_parallel_calls=calls)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def _cardinality_or(ds: tf.data.Dataset, default: int) -> int:
    n = int(ds.cardinality())
    return n if n > 0 else default
