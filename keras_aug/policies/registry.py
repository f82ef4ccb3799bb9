"""The op registry: name -> kind of op and how a magnitude becomes that op's parameter.

Magnitudes are normalized to `m` in [0, 1] (a policy's level divided by its top level), and every
op maps `m` to its parameter in ONE place, `op_parameter`, following torchvision's augmentation
spaces (which increase in strength with the level, unlike the original TF AutoAugment code for
Color/Contrast/Brightness/Sharpness/Posterize):

| op | parameter | "standard" (AutoAugment, RandAugment, AugMix) | "wide" (TrivialAugmentWide) |
|---|---|---|---|
| Rotate | degrees, signed | 30 m | 135 m |
| ShearX, ShearY | shear factor, signed | 0.3 m | 0.99 m |
| TranslateX, TranslateY | pixels, signed | 150/331 m × width/height | 32 m |
| Brightness, Color, Contrast, Sharpness | factor, signed | 1 ± 0.9 m | 1 ± 0.99 m |
| Posterize | bits kept | 8 − round(4 m) | 8 − round(6 m) |
| Solarize | threshold | high − m (high − low) | same |
| SolarizeAdd | added value (threshold 128/255) | 110/255 m (high − low) | same |
| Cutout | square side, pixels | 60/331 m × min(H, W) | 0.5 m × min(H, W) |
| Identity, AutoContrast, Equalize, Invert | none | | |

"Signed" ops are negated with probability 1/2 per sample and slot. Identity values (used where a
sample did not choose an op): angle/shear/translation 0, factor 1, bits 8, threshold above range,
addition 0, cutout side 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

GEOMETRY, COLOR, PARAMETERLESS, ERASE, IDENTITY = (
    "geometry", "color", "parameterless", "erase", "identity"
)
SPACES = ("standard", "wide")


@dataclass(frozen=True)
class OpSpec:
    """One registry entry: the op's kind (how the fused executor applies it), whether its
    magnitude is signed, and its parameter at magnitude 1 per augmentation space.

    Attributes:
        name: the op's name, the key in `OPS`.
        kind: how the fused executor applies it (identity, geometry, colour or a costly op).
        signed: whether the parameter is negated with probability 1/2.
        standard: parameter at magnitude 1 in the standard space (`None`: no magnitude).
        wide: parameter at magnitude 1 in TrivialAugmentWide's space.

    Example:
        >>> OPS["Rotate"]
        OpSpec(name='Rotate', kind='geometry', signed=True, standard=30.0, wide=135.0)
        >>> OPS["Rotate"].maximum("wide")
        135.0
    """

    name: str
    kind: str
    signed: bool
    standard: float | None = None
    wide: float | None = None

    def maximum(self, space: str) -> float | None:
        return self.standard if space == "standard" else self.wide

    @property
    def has_magnitude(self) -> bool:
        return self.standard is not None


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec("Identity", IDENTITY, False),
        OpSpec("ShearX", GEOMETRY, True, 0.3, 0.99),
        OpSpec("ShearY", GEOMETRY, True, 0.3, 0.99),
        OpSpec("TranslateX", GEOMETRY, True, 150.0 / 331.0, 32.0),  # wide: absolute pixels
        OpSpec("TranslateY", GEOMETRY, True, 150.0 / 331.0, 32.0),
        OpSpec("Rotate", GEOMETRY, True, 30.0, 135.0),
        OpSpec("Brightness", COLOR, True, 0.9, 0.99),
        OpSpec("Color", COLOR, True, 0.9, 0.99),
        OpSpec("Contrast", COLOR, True, 0.9, 0.99),
        OpSpec("Sharpness", COLOR, True, 0.9, 0.99),
        OpSpec("Posterize", COLOR, False, 4.0, 6.0),
        OpSpec("Solarize", COLOR, False, 1.0, 1.0),
        OpSpec("SolarizeAdd", COLOR, False, 110.0 / 255.0, 110.0 / 255.0),
        OpSpec("AutoContrast", PARAMETERLESS, False),
        OpSpec("Equalize", PARAMETERLESS, False),
        OpSpec("Invert", PARAMETERLESS, False),
        OpSpec("Cutout", ERASE, False, 60.0 / 331.0, 0.5),
    )
}

# The op lists of the published methods (torchvision's choices; the papers' lists).
RANDAUGMENT_OPS = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
)
TRIVIALAUGMENT_OPS = RANDAUGMENT_OPS
AUGMIX_OPS = (
    "AutoContrast", "Equalize", "Posterize", "Rotate", "Solarize", "ShearX", "ShearY",
    "TranslateX", "TranslateY",
)
AUGMIX_ALL_OPS = AUGMIX_OPS + ("Color", "Contrast", "Brightness", "Sharpness")

SOLARIZE_ADD_THRESHOLD = 128.0 / 255.0  # timm: add only to pixels below 128 (of 255)


def check_ops(name: str, ops) -> tuple[str, ...]:
    """Validate a sequence of registry op names (used by layers taking `ops=`)."""
    if isinstance(ops, str) or not hasattr(ops, "__iter__"):
        raise ValueError(f"{name} must be a list of op names from {sorted(OPS)}, got {ops!r}")
    ops = tuple(ops)
    if not ops:
        raise ValueError(f"{name} must name at least one op, got {ops!r}")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"{name} contains unknown op(s) {unknown}; known ops: {sorted(OPS)}")
    return ops


def op_parameter(
    name: str,
    magnitude: tf.Tensor,
    sign: tf.Tensor,
    *,
    space: str = "standard",
    height=None,
    width=None,
    value_range=(0.0, 255.0),
) -> tf.Tensor | None:
    """The parameter of op `name` for normalized magnitudes `magnitude` in [0, 1] (shape (B,)).

    The one place where levels become parameters (torchvision's ranges). Returns degrees
    (Rotate), shear factor, pixels (Translate*, Cutout side), enhance factor, int32 bits
    (Posterize), threshold (Solarize, in value_range units), addition (SolarizeAdd, value_range
    units), or None for parameterless ops.

    Args:
        name: a registry op name.
        magnitude: normalized magnitudes in [0, 1], shape (B,).
        sign: +1/-1 per sample, shape (B,); negates signed ops.
        space: `"standard"` or `"wide"`.
        height, width: image size, for the ops measured in pixels.
        value_range: the images' range, for Solarize and SolarizeAdd.

    Example:
        >>> op_parameter("Rotate", tf.constant([0.0, 1.0]), tf.constant([1.0, -1.0])).numpy()
        array([  0., -30.], dtype=float32)
        >>> op_parameter("Posterize", tf.constant([0.0, 1.0]), tf.constant([1.0, 1.0])).numpy()
        array([8, 4], dtype=int32)
    """
    spec = OPS[name]
    if not spec.has_magnitude:
        return None
    m = tf.cast(magnitude, tf.float32)
    top = spec.maximum(space)
    low, high = (float(v) for v in value_range)
    span = high - low
    signed = m * tf.cast(sign, tf.float32) if spec.signed else m
    if name in ("Rotate", "ShearX", "ShearY"):
        return signed * top
    if name in ("TranslateX", "TranslateY"):
        if space == "wide":
            return signed * top
        size = width if name == "TranslateX" else height
        return signed * top * tf.cast(size, tf.float32)
    if name in ("Brightness", "Color", "Contrast", "Sharpness"):
        return 1.0 + signed * top
    if name == "Posterize":
        return tf.cast(8.0 - tf.round(m * top), tf.int32)
    if name == "Solarize":
        return high - m * span
    if name == "SolarizeAdd":
        return m * top * span
    if name == "Cutout":
        side = tf.cast(tf.minimum(height, width), tf.float32)
        return m * top * side
    raise AssertionError(f"no magnitude mapping for {name}")  # unreachable: registry is closed


def identity_parameter(name: str, value_range=(0.0, 255.0)):
    """The parameter value at which op `name` leaves an image unchanged."""
    low, high = (float(v) for v in value_range)
    return {
        "Rotate": 0.0, "ShearX": 0.0, "ShearY": 0.0, "TranslateX": 0.0, "TranslateY": 0.0,
        "Brightness": 1.0, "Color": 1.0, "Contrast": 1.0, "Sharpness": 1.0, "Posterize": 8,
        "Solarize": high + (high - low), "SolarizeAdd": 0.0, "Cutout": 0.0,
    }.get(name)
