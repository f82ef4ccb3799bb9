"""Per-call randomness: one atomic draw from a seeded generator, then stateless per-sample draws.

Keras' `SeedGenerator` reads and then writes its state in two ops, so parallel `tf.data` map calls
can read the same state and repeat a batch's draws. `tf.random.Generator.make_seeds` reads and
advances its counter in one atomic op (`RngReadAndSkip`), so no two calls get the same key.

Everything after that is a counter-based hash of (key, draw number, element index) written in
plain integer ops. TensorFlow's own stateless ops give different numbers under XLA than without it
(and `stateless_gamma` has no XLA kernel), which would make a layer's output depend on whether it
was compiled; integer hashing is bit-identical on both paths.
"""
from __future__ import annotations

import math

import tensorflow as tf

_MASK32 = 0xFFFFFFFF


def make_generator(seed: int | None) -> tf.random.Generator:
    with tf.init_scope():
        if seed is None:
            return tf.random.Generator.from_non_deterministic_state()
        return tf.random.Generator.from_seed(seed)


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer finalizer ("lowbias32") on int64 tensors holding uint32 values."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = tf.bitwise.bitwise_and(x * 0x7FEB352D, _MASK32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 15))
    x = tf.bitwise.bitwise_and(x * 0x846CA68B, _MASK32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


class Draws:
    """Stateless draws from one call key (int64 [2]); each draw call uses its own stream.

    A layer's `sample_params(batch_size, images, draws)` receives one: every parameter of a batch
    comes from one key by counter-based hashing, so compiled and uncompiled runs draw the same
    values. Methods: `uniform`, `normal`, `integers`, `bernoulli`, `gamma`, `beta`.

    Args:
        key: int64 tensor of shape (2,); the same key gives the same sequence of draws.

    Example:
        >>> draws = Draws(tf.constant([1, 2], tf.int64))
        >>> angles = draws.uniform([4], -30.0, 30.0)        # one value per image
        >>> flips = draws.bernoulli([4], 0.5)
        >>> again = Draws(tf.constant([1, 2], tf.int64)).uniform([4], -30.0, 30.0)
        >>> bool(tf.reduce_all(angles == again))
        True
    """

    def __init__(self, key: tf.Tensor):
        key = tf.bitwise.bitwise_and(tf.cast(key, tf.int64), _MASK32)
        self._k0 = _mix32(key[0] ^ 0x9E3779B9)
        self._k1 = _mix32(key[1] ^ 0x85EBCA6B)
        self._count = 0

    def _bits(self, shape, stream=None, offset=0) -> tf.Tensor:
        """Uniform uint32 values (held in int64) of `shape`: elements `offset..offset + size` of
        stream number `stream` (default: the next one)."""
        if stream is None:
            self._count += 1
            stream = self._count
        n = tf.reduce_prod(tf.cast(shape, tf.int64))
        index = tf.cast(offset, tf.int64) + tf.range(n, dtype=tf.int64)
        stream = _mix32(tf.bitwise.bitwise_xor(self._k0, stream * 0x632BE5AB & _MASK32))
        x = _mix32(tf.bitwise.bitwise_xor(index, stream))
        x = _mix32(tf.bitwise.bitwise_xor(x, self._k1) + index & _MASK32)
        return tf.reshape(x, shape)

    def uniform(self, shape, minval=0.0, maxval=1.0, dtype=tf.float32) -> tf.Tensor:
        """Floats in [minval, maxval)."""
        u = self._unit(self._bits(shape))
        return tf.cast(minval + u * (maxval - minval), dtype)

    @staticmethod
    def _unit(bits: tf.Tensor) -> tf.Tensor:
        """uint32 values -> floats in [0, 1) from their top 24 bits."""
        return tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * (1.0 / (1 << 24))

    def normal(self, shape, mean=0.0, stddev=1.0) -> tf.Tensor:
        """Box-Muller normals."""
        u1 = 1.0 - self.uniform(shape)  # (0, 1]
        u2 = self.uniform(shape)
        z = tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * math.pi * u2)
        return mean + stddev * z

    def integers(self, shape, minval, maxval) -> tf.Tensor:
        """Integers in [minval, maxval) (maxval exclusive), int32."""
        span = tf.cast(maxval, tf.int64) - tf.cast(minval, tf.int64)
        value = tf.cast(minval, tf.int64) + self._bits(shape) % tf.maximum(span, 1)
        return tf.cast(value, tf.int32)

    def bernoulli(self, shape, p) -> tf.Tensor:
        return self.uniform(shape) < p

    def gamma(self, shape, alpha) -> tf.Tensor:
        """Gamma(alpha, 1) by Marsaglia-Tsang with at most 16 proposals per element (XLA-friendly).

        Each proposal is accepted with probability > 0.95 for alpha >= 1, so a fallback to the
        mean after 16 happens with probability < 1e-20. Proposals are drawn in rounds by a
        `tf.while_loop` that stops once every element has accepted (2-3 rounds for a batch, not
        16); round r uses elements r*size.. of the same streams, so the values equal those of
        drawing all 16 proposals at once. alpha < 1 uses the boost
        Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha).
        """
        alpha = tf.convert_to_tensor(alpha, tf.float32)
        a = tf.where(alpha < 1.0, alpha + 1.0, alpha)
        d = a - 1.0 / 3.0
        c = 1.0 / tf.sqrt(9.0 * d)
        proposals = 16
        shape = tf.cast(shape, tf.int32)
        size = tf.reduce_prod(tf.cast(shape, tf.int64))
        first = self._count + 1  # streams: two uniforms of the Box-Muller normal, acceptance
        self._count += 3

        def round_(r, value, done):
            def uniform(stream):
                return self._unit(self._bits(shape, first + stream, tf.cast(r, tf.int64) * size))

            z = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform(0))) * tf.cos(2.0 * math.pi * uniform(1))
            u = uniform(2)
            v = (1.0 + c * z) ** 3
            ok = (v > 0) & (tf.math.log(tf.maximum(u, 1e-30)) < 0.5 * z * z + d - d * v
                            + d * tf.math.log(tf.maximum(v, 1e-30)))
            return r + 1, tf.where(ok & ~done, d * v, value), done | ok

        _, value, _ = tf.while_loop(
            lambda r, _, done: (r < proposals) & ~tf.reduce_all(done), round_,
            (tf.constant(0), tf.broadcast_to(a, shape), tf.zeros(shape, tf.bool)))
        boost = tf.pow(tf.maximum(self.uniform(shape), 1e-30), 1.0 / alpha)
        return tf.where(alpha < 1.0, value * boost, value)

    def beta(self, shape, alpha, beta) -> tf.Tensor:
        x = self.gamma(shape, alpha)
        y = self.gamma(shape, beta)
        return x / tf.maximum(x + y, 1e-30)
