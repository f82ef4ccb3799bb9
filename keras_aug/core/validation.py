"""Argument and input checks shared by every layer: each error names the argument, the value and
what was expected."""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import tensorflow as tf

FLOAT_DTYPES = (tf.float16, tf.bfloat16, tf.float32, tf.float64)


def check_probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_integer(name: str, value, minimum: int = 1) -> int:
    """An integer (numpy integers too, bools not) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number (bools not) within `low`..`high`; `*_open` excludes that bound."""
    inside = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if inside and low is not None:
        inside = value > low if low_open else value >= low
    if inside and high is not None:
        inside = value < high if high_open else value <= high
    if not inside:
        if low is not None and high is not None:
            where = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            where = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            where = f"{'<' if high_open else '<='} {high:g}"
        else:
            where = "(finite)"
        raise ValueError(f"{name} must be a number {where}, got {value!r}")
    return float(value)


def check_value_range(value_range) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"value_range must be a pair (low, high) such as (0, 255) or (0, 1), got {value_range!r}"
        ) from None
    if not low < high:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    return (low, high)


def check_range(
    name: str,
    value,
    *,
    symmetric: bool = False,
    low: float | None = None,
    high: float | None = None,
    center: float = 0.0,
) -> tuple[float, float]:
    """A factor given as a number or a `(min, max)` pair -> a validated `(min, max)` pair.

    A single number `f` means `(center - f, center + f)` when `symmetric`, else `(center, f)`.
    Bounds `low`/`high` are inclusive limits on both ends.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must be non-negative when given as one number, got {value!r}")
        pair = (center - value, center + value) if symmetric else (center, float(value))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{name} must contain two numbers, got {value!r}")
        pair = (float(value[0]), float(value[1]))
        if pair[0] > pair[1]:
            raise ValueError(f"{name} must be (min, max) with min <= max, got {value!r}")
    else:
        raise ValueError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    if (low is not None and pair[0] < low) or (high is not None and pair[1] > high):
        raise ValueError(f"{name} must lie within [{low}, {high}], got {value!r}")
    return (float(pair[0]), float(pair[1]))


def check_positive_range(name: str, value, *, end: str = "min", **bounds) -> tuple[float, float]:
    """`check_range` whose `end` ("min" or "max") must also be > 0 (a scale, ratio or size)."""
    pair = check_range(name, value, **bounds)
    if pair[0 if end == "min" else 1] <= 0:
        raise ValueError(f"{name} must be a (min, max) range with {end} > 0, got {value!r}")
    return pair


def check_choice(name: str, value, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_images(images: tf.Tensor, channels: Sequence[int] | None = (1, 3, 4)) -> None:
    """Static checks on a batch (B, H, W, C) or a single image (H, W, C)."""
    if images.shape.rank not in (3, 4):
        raise ValueError(
            "images must have rank 4 (batch, height, width, channels) or rank 3 (one image), "
            f"got rank {images.shape.rank} with shape {images.shape}"
        )
    if images.dtype not in FLOAT_DTYPES and images.dtype != tf.uint8:
        raise TypeError(
            f"images must be float (values in value_range) or uint8, got dtype {images.dtype.name}"
        )
    c = images.shape[-1]
    if channels is not None and c is not None and c not in channels:
        raise ValueError(f"images must have {' or '.join(map(str, channels))} channels, got {c}")
    if images.shape.rank == 4 and images.shape[0] == 0:
        raise ValueError("images is an empty batch (batch size 0)")
