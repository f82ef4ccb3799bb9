"""Live layer state: attributes held in tf.Variables and read inside the compiled graph.

A layer's probability, its factor ranges and a policy's magnitudes and tables are declared as
`Live` class attributes. Assigning one (`layer.p = 0.3`, `layer.factor = (0.1, 0.4)`,
`layer.strength = 0.5`) validates the value and writes its variable, so the next batch uses it in
`tf.data`, in eager calls and in a compiled `model.fit` alike, without a retrace or an XLA
recompilation (the variables are runtime inputs of the traced function, not constants in it).

`strength` in [0, 1] scales every `Live` attribute that has an `identity` (the value at which it
changes nothing: angle 0, factor 1, bits 8...) between that identity (strength 0) and its assigned
value (strength 1); a layer without such attributes (flips, invert, mixing) scales its
probability `p` instead, so `strength = 0` always means "no augmentation".

Variables are not Keras weights: they are not trained, not in `layer.weights` and not in
checkpoints; a layer's config carries the Python values. Under the tf.data service the dataset
graph, and with it each variable's value at the time the dataset is distributed, is copied into
every worker: later assignments do not reach the workers.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf


class Live:
    """A layer attribute kept in a non-trainable tf.Variable (see the module docstring).

    Args:
        check: `check(name, value) -> resolved` validates a user value and returns a float or a
            tuple of floats (the form the graph reads).
        identity: the resolved value (a float, broadcast over a tuple) at which the attribute
            changes nothing; `None` means `strength` does not scale it.
        optional: `None` is accepted; it reads as `identity` (of shape `shape`) in the graph.
        shape: the value's shape, used for `None`; `(2,)` for a `(min, max)` range.
        dtype: the variable's dtype.
    """

    def __init__(self, check: Callable[[str, Any], Any], identity: float | None = None,
                 optional: bool = False, shape: tuple[int, ...] = (),
                 dtype: tf.DType = tf.float32):
        self.check = check
        self.identity = identity
        self.optional = optional
        self.shape = shape
        self.dtype = dtype
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        try:
            return layer.__dict__["_live_values"][self.name]
        except KeyError:
            raise AttributeError(f"{type(layer).__name__}.{self.name} is not set yet") from None

    def __set__(self, layer, value) -> None:
        resolved = None if (value is None and self.optional) else self.check(self.name, value)
        numeric = resolved
        if resolved is None:
            if self.identity is None:
                raise ValueError(f"{self.name} cannot be None")
            numeric = np.full(self.shape, self.identity)
        layer._check_live(self.name, resolved)
        array = np.asarray(numeric, dtype=self.dtype.as_numpy_dtype)
        variables = layer.__dict__.setdefault("_live_variables", {})
        values = layer.__dict__.setdefault("_live_values", {})
        variable = variables.get(self.name)
        if variable is None:
            with tf.init_scope():
                variables[self.name] = tf.Variable(array, trainable=False, name=self.name)
        elif tuple(variable.shape) != array.shape:
            raise ValueError(
                f"{self.name} must keep the shape it was built with, {tuple(variable.shape)}; "
                f"got {value!r} (shape {array.shape}). Construct a new layer for another shape.")
        else:
            variable.assign(array)
        values[self.name] = resolved


def live_attributes(cls) -> dict[str, Live]:
    """The `Live` attributes of a layer class, by name (base classes first)."""
    found: dict[str, Live] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Live):
                found[name] = value
    return found


def check_strength(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
        0.0 <= float(value) <= 1.0
    ):
        raise ValueError(f"{name} must be a number in [0, 1] (0: no augmentation, 1: the "
                         f"configured ranges), got {value!r}")
    return float(value)
