"""Per-call randomness: one atomic draw from a seeded generator, then stateless per-sample draws.

Keras' `SeedGenerator` reads and then writes its state in two ops, so parallel `tf.data` map calls
can read the same state and repeat a batch's draws. `tf.random.Generator.make_seeds` reads and
advances its counter in one atomic op (`RngReadAndSkip`), so no two calls get the same key;
everything after that is stateless and therefore reproducible from the key.
"""
from __future__ import annotations

import tensorflow as tf


def make_generator(seed: int | None) -> tf.random.Generator:
    with tf.init_scope():
        if seed is None:
            return tf.random.Generator.from_non_deterministic_state()
        return tf.random.Generator.from_seed(seed)


class Draws:
    """Stateless draws from one call key; each draw uses its own sub-key (fold-in of a counter)."""

    def __init__(self, key: tf.Tensor):
        self.key = tf.cast(key, tf.int64)
        self._count = 0

    def next_key(self) -> tf.Tensor:
        self._count += 1
        return tf.random.experimental.stateless_fold_in(self.key, self._count)

    def uniform(self, shape, minval=0.0, maxval=1.0, dtype=tf.float32) -> tf.Tensor:
        return tf.random.stateless_uniform(shape, self.next_key(), minval, maxval, dtype=dtype)

    def normal(self, shape, mean=0.0, stddev=1.0) -> tf.Tensor:
        return tf.random.stateless_normal(shape, self.next_key(), mean, stddev)

    def integers(self, shape, minval, maxval) -> tf.Tensor:
        """Integers in [minval, maxval) (maxval exclusive), int32."""
        return tf.random.stateless_uniform(
            shape, self.next_key(), minval, maxval, dtype=tf.int32
        )

    def bernoulli(self, shape, p) -> tf.Tensor:
        return self.uniform(shape) < p

    def beta(self, shape, alpha, beta) -> tf.Tensor:
        x = tf.random.stateless_gamma(shape, self.next_key(), alpha)
        y = tf.random.stateless_gamma(shape, self.next_key(), beta)
        return x / (x + y)
