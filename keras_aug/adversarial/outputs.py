"""Does a classifier output logits or probabilities? Attacks and losses must know, and guessing
wrong fails silently (a softmax applied twice flattens every gradient), so kaug asks the user or
reads it off a final softmax, and refuses otherwise."""
from __future__ import annotations

import keras


def _last_layer(model):
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    last = layers[-1]
    if isinstance(last, keras.Model):
        return _last_layer(last) or last
    return last


def _activation_name(layer) -> str | None:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", None) or type(activation).__name__


def resolve_from_logits(model, from_logits: bool | None) -> bool:
    """Return whether `model` outputs logits, from the user's `from_logits` or a final softmax.

    Raises ValueError when neither tells, and when the statement contradicts the last layer
    (logits claimed after a softmax, or probabilities claimed after a linear layer).

    Args:
        model: a Keras classifier.
        from_logits: the user's statement: True, False, or None to detect a final softmax.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        >>> resolve_from_logits(model, None)
        False
    """
    if from_logits is not None and not isinstance(from_logits, bool):
        raise TypeError(f"from_logits must be True, False or None, got {from_logits!r}")
    last = _last_layer(model)
    activation = _activation_name(last) if last is not None else None
    described = f"{type(last).__name__}(activation={activation})" if last is not None else None
    if from_logits is None:
        if activation == "softmax":
            return False
        where = f"its last layer is {described}" if described else "it has no inspectable last layer"
        raise ValueError(
            "Cannot tell whether the model outputs logits or probabilities: "
            f"{where}. Pass from_logits=True (raw scores, e.g. a final Dense without activation) "
            "or from_logits=False (a final softmax)."
        )
    if from_logits and activation == "softmax":
        raise ValueError(
            f"from_logits=True, but the model's last layer is {described}: it outputs "
            "probabilities. Pass from_logits=False (or drop the softmax)."
        )
    if not from_logits and activation == "linear":
        raise ValueError(
            f"from_logits=False, but the model's last layer is {described}: it outputs "
            "unnormalised scores (logits). Pass from_logits=True (or add a softmax)."
        )
    return from_logits


__all__ = ["resolve_from_logits"]
