"""Batched adversarial attacks (FGSM, PGD under L∞ or L2) as plain TensorFlow functions.

Every budget (`eps`, `step_size`) is in the units of the images' `value_range`: with images in
(0, 255), `eps=8` is the classic 8/255. Adversarial images are clipped to `value_range` and
returned under `tf.stop_gradient`, and the attack's tape watches only the input, so no gradient
from the attack ever reaches the model's parameters. The functions work eagerly and inside
`tf.function` / XLA (the PGD loop is a `tf.while_loop`, not an unrolled Python loop).
"""
from __future__ import annotations

import numbers
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.labels import cross_entropy
from keras_aug.core.validation import check_choice, check_integer, check_number, check_value_range

NORMS = ("linf", "l2")
# The attacks use no Python control flow on tensors (the PGD loop is an explicit tf.while_loop),
# so autograph has nothing to convert; skipping it (measured) halves the tracing time of a
# train step.
_plain = tf.autograph.experimental.do_not_convert


# ---------------------------------------------------------------------------------------------
# Argument checks (shared with the training wrapper and the evaluation)


def check_eps(eps, value_range=(0, 255), name: str = "eps", norm: str = "linf") -> float:
    """`eps` must be a finite number >= 0 in value_range units (for L∞, at most the range's width:
    a larger budget usually means the units are wrong)."""
    low, high = check_value_range(value_range)
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not np.isfinite(eps):
        raise ValueError(f"{name} must be a non-negative number in value_range units, got {eps!r}")
    if eps < 0:
        raise ValueError(f"{name} must be >= 0 (a perturbation budget), got {eps!r}")
    if norm == "linf" and eps > high - low:
        raise ValueError(
            f"{name}={eps!r} exceeds the width of value_range={value_range!r}; budgets are in "
            f"value_range units (e.g. 0.1 * {high - low:g} = {0.1 * (high - low):g})"
        )
    return float(eps)


def check_steps(steps, name: str = "steps") -> int:
    return check_integer(name, steps)


def check_step_size(step_size, name: str = "step_size") -> float:
    return check_number(f"{name} (in value_range units)", step_size, low=0, low_open=True)


def default_step_size(eps: float, steps: int) -> float:
    """Madry et al.'s rule: 2.5·ε/steps, so a walk can cross the ε-ball and back."""
    return 2.5 * eps / steps


def check_data_range(images, value_range, name: str = "images") -> None:
    """Eager check that a batch lies inside `value_range` and actually uses it.

    Catches the common mismatch of [0, 1] images under the default (0, 255) range, where an
    ε meant as 8/255 would be 8 times the whole image.
    """
    low, high = check_value_range(value_range)
    values = np.asarray(images, dtype=np.float32)
    if values.size == 0:
        return
    lo, hi = float(values.min()), float(values.max())
    width = high - low
    if lo < low - 1e-3 * width or hi > high + 1e-3 * width:
        raise ValueError(
            f"{name} lie in [{lo:g}, {hi:g}], outside value_range={tuple(value_range)!r}. Pass the "
            "value_range your images use, e.g. value_range=(0, 1) for images scaled to [0, 1]."
        )
    if width > 2.0 and 0.0 <= lo and hi <= 1.0 and hi - lo > 0:
        raise ValueError(
            f"{name} lie in [{lo:g}, {hi:g}] but value_range={tuple(value_range)!r}: they look "
            "scaled to [0, 1]. Pass value_range=(0, 1) (and eps in those units) or feed 0..255 images."
        )


# ---------------------------------------------------------------------------------------------
# Losses the attacks climb


# Per-sample cross-entropy for integer labels (B,) or one-hot / soft labels (B, K).
classification_loss = _plain(cross_entropy)


@_plain
def probabilities(outputs, from_logits: bool) -> tf.Tensor:
    outputs = tf.cast(outputs, tf.float32)
    return tf.nn.softmax(outputs, axis=-1) if from_logits else outputs


@_plain
def kl_divergence(p_clean, outputs, from_logits: bool) -> tf.Tensor:
    """Per-sample KL(p_clean || p(outputs)) summed over classes (TRADES' robust term)."""
    if from_logits:
        log_q = tf.nn.log_softmax(tf.cast(outputs, tf.float32), axis=-1)
    else:
        log_q = tf.math.log(tf.clip_by_value(tf.cast(outputs, tf.float32), 1e-7, 1.0))
    log_p = tf.math.log(tf.clip_by_value(p_clean, 1e-7, 1.0))
    return tf.reduce_sum(p_clean * (log_p - log_q), axis=-1)


# ---------------------------------------------------------------------------------------------
# Geometry of the threat models


def _per_sample_norm(x: tf.Tensor) -> tf.Tensor:
    """L2 norm of each sample, shaped (B, 1, ..., 1) to broadcast against x."""
    axes = list(range(1, x.shape.rank))
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=axes, keepdims=True) + 1e-12)


@_plain
def project(delta: tf.Tensor, eps: float, norm: str) -> tf.Tensor:
    """Project perturbations onto the ε-ball of `norm` (per sample)."""
    if norm == "linf":
        return tf.clip_by_value(delta, -eps, eps)
    scale = tf.minimum(1.0, eps / _per_sample_norm(delta))
    return delta * scale


@_plain
def _ascent_direction(grad: tf.Tensor, norm: str) -> tf.Tensor:
    """Steepest ascent direction of unit `norm`: sign(g) for L∞, g/‖g‖₂ for L2."""
    if norm == "linf":
        return tf.sign(grad)
    return grad / _per_sample_norm(grad)


@_plain
def random_start(shape, eps: float, norm: str, seed=None) -> tf.Tensor:
    """A uniform draw from the ε-ball (cube for L∞; uniform in volume for L2)."""
    if norm == "linf":
        return _uniform(shape, -eps, eps, seed)
    direction = _normal(shape, seed)
    direction = direction / _per_sample_norm(direction)
    dims = tf.cast(tf.reduce_prod(shape[1:]), tf.float32)
    radius = eps * tf.pow(_uniform(tf.concat([shape[:1], tf.ones_like(shape[1:])], 0), 0.0, 1.0,
                                   seed), 1.0 / dims)
    return direction * radius


def _uniform(shape, low, high, seed):
    if seed is None:
        return tf.random.uniform(shape, low, high)
    return keras.random.uniform(shape, low, high, seed=seed)


def _normal(shape, seed):
    if seed is None:
        return tf.random.normal(shape)
    return keras.random.normal(shape, seed=seed)


# ---------------------------------------------------------------------------------------------
# Attacks


@_plain
def input_gradient(model: Callable, images: tf.Tensor, objective: Callable) -> tf.Tensor:
    """∂ objective(model(images)).sum() / ∂ images, with the tape watching the input only.

    `watch_accessed_variables=False` keeps the model's weights off the tape: the attack neither
    pays for parameter gradients nor lets any reach them.
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(images)
        loss = tf.reduce_sum(objective(model(images, training=False)))
    return tape.gradient(loss, images)


@_plain
def fgsm(
    model: Callable,
    images,
    labels,
    eps: float,
    *,
    from_logits: bool = True,
    value_range=(0, 255),
    norm: str = "linf",
) -> tf.Tensor:
    """Fast Gradient Sign Method (Goodfellow et al. 2015): one step of size ε up the loss.

    Args:
        model: a callable `model(images, training=False)` returning logits or probabilities.
        images: float batch (B, H, W, C) in `value_range`.
        labels: integer (B,) or one-hot (B, K) labels.
        eps: budget in value_range units (e.g. 8 for 8/255 with 0..255 images).
        from_logits: whether `model` outputs logits (True) or probabilities (False).
        value_range: `(low, high)` of the images; the result is clipped to it.
        norm: `"linf"` (sign of the gradient) or `"l2"` (normalised gradient, ‖δ‖₂ = ε).

    Returns:
        Adversarial images, same shape, float32, no gradient attached.

    Example:
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])            # logits
        >>> images = tf.random.uniform([4, 32, 32, 1], 0, 255)
        >>> labels = tf.constant([0, 1, 2, 3])
        >>> x_adv = fgsm(model, images, labels, eps=0.1 * 255, from_logits=True)
        >>> float(tf.reduce_max(tf.abs(x_adv - images))) <= 25.5 + 1e-3
        True
    """
    check_choice("norm", norm, NORMS)
    eps = check_eps(eps, value_range, norm=norm)
    return pgd(model, images, labels, eps, steps=1, step_size=eps or None, random_start=False,
               from_logits=from_logits, value_range=value_range, norm=norm)


@_plain
def pgd(
    model: Callable,
    images,
    labels,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    from_logits: bool = True,
    value_range=(0, 255),
    norm: str = "linf",
    seed=None,
    objective: Callable | None = None,
    start: tf.Tensor | None = None,
) -> tf.Tensor:
    """Projected Gradient Descent (Madry et al. 2018) under an L∞ or L2 budget.

    Args:
        model: a callable `model(images, training=False)` returning logits or probabilities.
        images: float batch (B, H, W, C) in `value_range`.
        labels: integer (B,) or one-hot (B, K) labels.
        eps: budget in value_range units.
        steps: gradient steps (>= 1).
        step_size: per-step size in value_range units; default 2.5·ε/steps.
        random_start: start from a uniform draw in the ε-ball (Madry) instead of the image.
        from_logits: whether `model` outputs logits (True) or probabilities (False).
        value_range: `(low, high)` of the images; every iterate is clipped to it.
        norm: `"linf"` or `"l2"`.
        seed: an int or a `keras.random.SeedGenerator` for the random start (None: unseeded).
        objective: `objective(outputs) -> per-sample loss` to climb; default cross-entropy
            against `labels` (TRADES passes a KL term here).
        start: the first iterate (projected into the ball); overrides `random_start`.

    Returns:
        Adversarial images with ‖x_adv − x‖ ≤ ε and values in `value_range`, no gradient attached.

    Example:
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])            # logits
        >>> images = tf.random.uniform([4, 32, 32, 1], 0, 255)
        >>> labels = tf.constant([0, 1, 2, 3])
        >>> x_adv = pgd(model, images, labels, eps=0.1 * 255, steps=20, from_logits=True)
        >>> float(tf.reduce_max(tf.abs(x_adv - images))) <= 25.5 + 1e-3
        True
    """
    low, high = check_value_range(value_range)
    check_choice("norm", norm, NORMS)
    eps = check_eps(eps, value_range, norm=norm)
    steps = check_steps(steps)
    step_size = default_step_size(eps, steps) if step_size is None else check_step_size(step_size)
    images = tf.cast(tf.convert_to_tensor(images), tf.float32)
    if tf.executing_eagerly():
        check_data_range(images, value_range)
    labels = tf.convert_to_tensor(labels)
    if objective is None:
        def objective(outputs):
            return classification_loss(labels, outputs, from_logits)

    images = tf.stop_gradient(images)
    if eps == 0:
        return images
    if start is not None:
        start = images + project(tf.cast(start, tf.float32) - images, eps, norm)
        start = tf.clip_by_value(start, low, high)
    elif random_start and eps > 0:
        delta = random_start_fn(tf.shape(images), eps, norm, seed)
        start = tf.clip_by_value(images + delta, low, high)
    else:
        start = images

    def step(i, x_adv):
        grad = input_gradient(model, x_adv, objective)
        x_adv = x_adv + step_size * _ascent_direction(grad, norm)
        x_adv = images + project(x_adv - images, eps, norm)
        return i + 1, tf.clip_by_value(x_adv, low, high)

    _, x_adv = tf.while_loop(lambda i, _: i < steps, step, (tf.constant(0), start),
                             maximum_iterations=steps)
    return tf.stop_gradient(x_adv)


random_start_fn = random_start  # `pgd` has an argument of the same name

__all__ = ["fgsm", "pgd", "project", "random_start", "classification_loss", "kl_divergence",
           "check_eps", "check_steps", "check_step_size", "check_data_range", "NORMS"]
