"""The fused executor: apply per-sample op sequences to a batch with ONE warp.

Every image `b` has `K` op slots: `ops[b, k]` (index into `op_names`), a normalized magnitude
`magnitudes[b, k]` in [0, 1] and a sign `signs[b, k]` (+1/-1). Different images choose different
ops; no op is computed on every image and then selected, and no image is processed on its own.

How the order of ops is kept:
- Geometric ops (Rotate, Shear*, Translate*) of all slots become one per-sample 3x3 matrix
  (output->input, `A_1 @ A_2 @ ... @ A_K`, i.e. slot 1 is applied first) and ONE warp.
- Non-geometric ops run in "colour slots": a colour slot applies every family present in the policy
  once, with per-sample parameters and identity values (factor 1, bits 8, threshold above range,
  cutout side 0) for images that did not choose it in that slot. Parameterless ops (AutoContrast,
  Equalize, Invert) run once per slot on the batch, are kept only for the images that chose them,
  and are skipped entirely (`tf.cond`) when no image chose them.
- For each image, a colour op that comes BEFORE its last geometric op runs before the warp; one
  that comes AFTER it runs after the warp. So slots 1..K run before the warp and slots 2..K after
  it (2K - 1 colour slots, each only touching the images for which it is active).
  This is exactly sequential for every image whose geometric ops are consecutive: all of
  TrivialAugment (K=1), AutoAugment (K=2), RandAugment with N <= 2, and AugMix chains up to depth
  2. Only a colour op sandwiched between two geometric ops (possible for N >= 3) is moved before
  the warp; pointwise colour ops commute with a warp up to interpolation and the fill region.
  Consecutive geometric ops are resampled once instead of once per op (sharper than sequential).
"""
from __future__ import annotations

import math

import tensorflow as tf

from keras_aug.ops import color as color_ops
from keras_aug.ops import erase as erase_ops
from keras_aug.ops import geometry as geometry_ops
from keras_aug.policies.registry import (
    GEOMETRY,
    OPS,
    SOLARIZE_ADD_THRESHOLD,
    identity_parameter,
    op_parameter,
)

_ENHANCE = {
    "Brightness": "brightness",
    "Color": "saturation",
    "Contrast": "contrast",
    "Sharpness": "sharpness",
}
_PARAMETERLESS = {"AutoContrast": "autocontrast", "Equalize": "equalize", "Invert": "invert"}


def apply_op_sequence(
    images: tf.Tensor,
    ops: tf.Tensor,
    magnitudes: tf.Tensor,
    signs: tf.Tensor,
    *,
    op_names,
    space: str = "standard",
    value_range=(0.0, 255.0),
    interpolation: str = "bilinear",
    fill_value: float = 0.0,
    cutout_centers: tf.Tensor | None = None,
) -> tf.Tensor:
    """Apply each image's op sequence (see module docstring).

    Args:
        images: float32 (B, H, W, C) in `value_range`.
        ops: int32 (B, K) indices into `op_names`.
        magnitudes: float (B, K), normalized magnitudes in [0, 1].
        signs: float (B, K), +1 or -1 (used by signed ops).
        op_names: the registry names `ops` indexes (static).
        space: "standard" or "wide" magnitude space (see `registry`).
        interpolation: warp interpolation, "bilinear" or "nearest".
        fill_value: value for pixels warped in from outside and for Cutout.
        cutout_centers: float (B, K, 2) relative (y, x) centers in [0, 1), needed if "Cutout" is used.
    """
    names = tuple(op_names)
    num_slots = ops.shape[1]
    if num_slots is None:
        raise ValueError("ops must have a static number of slots (second dimension)")
    ops = tf.cast(ops, tf.int32)
    magnitudes = tf.cast(magnitudes, tf.float32)
    signs = tf.cast(signs, tf.float32)
    shape = tf.shape(images)
    # static sizes where known: the matrix builders centre on Python floats
    height = images.shape[1] if images.shape[1] is not None else shape[1]
    width = images.shape[2] if images.shape[2] is not None else shape[2]
    ctx = _Context(names, ops, magnitudes, signs, space, value_range, height, width,
                   fill_value, cutout_centers)

    geometric = [i for i, n in enumerate(names) if OPS[n].kind == GEOMETRY]
    if geometric:
        is_geom = tf.reduce_any(tf.equal(ops[..., None], tf.constant(geometric, tf.int32)), -1)
        slot_index = tf.range(num_slots, dtype=tf.int32)
        last_geom = tf.reduce_max(tf.where(is_geom, slot_index, -1), axis=1)
    else:
        is_geom = tf.zeros_like(ops, tf.bool)
        last_geom = -tf.ones_like(ops[:, 0])

    x = images
    for k in range(num_slots):  # colour ops before each image's last geometric op
        active = ~is_geom[:, k] & ((k < last_geom) | (last_geom < 0))
        x = _color_slot(x, k, active, ctx)
    if geometric:
        matrices = _slot_matrix(0, ctx)
        for k in range(1, num_slots):
            matrices = tf.matmul(matrices, _slot_matrix(k, ctx))
        any_geom = tf.reduce_any(is_geom, axis=1)

        def warp(x=x):
            warped = geometry_ops.warp(x, matrices, interpolation=interpolation,
                                       fill_mode="constant", fill_value=fill_value)
            return tf.where(any_geom[:, None, None, None], warped, x)

        x = tf.cond(tf.reduce_any(any_geom), warp, lambda: x)
        for k in range(1, num_slots):  # colour ops after each image's last geometric op
            active = ~is_geom[:, k] & (last_geom >= 0) & (k > last_geom)
            x = _color_slot(x, k, active, ctx)
    return x


class _Context:
    """The per-batch inputs shared by the slot helpers."""

    def __init__(self, names, ops, magnitudes, signs, space, value_range, height, width,
                 fill_value, cutout_centers):
        self.names, self.ops, self.magnitudes, self.signs = names, ops, magnitudes, signs
        self.space, self.value_range = space, tuple(float(v) for v in value_range)
        self.height, self.width = height, width
        self.fill_value, self.cutout_centers = fill_value, cutout_centers

    def chosen(self, k: int, name: str) -> tf.Tensor | None:
        """(B,) bool: images whose slot k is op `name`; None when the policy never uses it."""
        if name not in self.names:
            return None
        return tf.equal(self.ops[:, k], self.names.index(name))

    def parameter(self, k: int, name: str, where: tf.Tensor):
        value = op_parameter(name, self.magnitudes[:, k], self.signs[:, k], space=self.space,
                             height=self.height, width=self.width, value_range=self.value_range)
        identity = tf.cast(identity_parameter(name, self.value_range), value.dtype)
        return tf.where(where, value, identity)


def _maybe(condition: tf.Tensor, fn, x: tf.Tensor) -> tf.Tensor:
    """fn(x) only when some image needs it (skips whole-batch work in sparse slots)."""
    return tf.cond(tf.reduce_any(condition), lambda: fn(x), lambda: x)


def _color_slot(x: tf.Tensor, k: int, active: tf.Tensor, ctx: _Context) -> tf.Tensor:
    vr = ctx.value_range
    for name, fn_name in _ENHANCE.items():
        chosen = ctx.chosen(k, name)
        if chosen is not None:
            chosen &= active
            factor = ctx.parameter(k, name, chosen)
            fn = getattr(color_ops, fn_name)
            x = _maybe(chosen, lambda x, fn=fn, f=factor: fn(x, f, vr), x)
    chosen = ctx.chosen(k, "Posterize")
    if chosen is not None:
        chosen &= active
        bits = ctx.parameter(k, "Posterize", chosen)
        x = _maybe(chosen, lambda x: color_ops.posterize(x, bits, vr), x)
    chosen = ctx.chosen(k, "Solarize")
    if chosen is not None:
        chosen &= active
        threshold = ctx.parameter(k, "Solarize", chosen)
        x = _maybe(chosen, lambda x: color_ops.solarize(x, threshold, vr), x)
    chosen = ctx.chosen(k, "SolarizeAdd")
    if chosen is not None:
        chosen &= active
        addition = ctx.parameter(k, "SolarizeAdd", chosen)
        low, high = vr
        threshold = tf.fill(tf.shape(addition), low + SOLARIZE_ADD_THRESHOLD * (high - low))
        x = _maybe(chosen, lambda x: color_ops.solarize_add(x, addition, threshold, vr), x)
    for name, fn_name in _PARAMETERLESS.items():
        chosen = ctx.chosen(k, name)
        if chosen is not None:
            chosen &= active
            fn = getattr(color_ops, fn_name)
            x = _maybe(
                chosen,
                lambda x, fn=fn, c=chosen: tf.where(c[:, None, None, None], fn(x, vr), x),
                x,
            )
    chosen = ctx.chosen(k, "Cutout")
    if chosen is not None:
        if ctx.cutout_centers is None:
            raise ValueError("cutout_centers is required when op_names include 'Cutout'")
        chosen &= active
        side = ctx.parameter(k, "Cutout", chosen)
        cy = ctx.cutout_centers[:, k, 0] * tf.cast(ctx.height, tf.float32)
        cx = ctx.cutout_centers[:, k, 1] * tf.cast(ctx.width, tf.float32)
        x = _maybe(chosen, lambda x: erase_ops.cutout(x, cy, cx, side, side, ctx.fill_value), x)
    return x


def _slot_matrix(k: int, ctx: _Context) -> tf.Tensor:
    """(B, 3, 3) output->input matrix of slot k's geometric op (identity where none)."""
    zero = tf.zeros_like(ctx.magnitudes[:, k])

    def param(name):
        chosen = ctx.chosen(k, name)
        return zero if chosen is None else ctx.parameter(k, name, chosen)

    angle = param("Rotate") * (math.pi / 180.0)
    matrix = geometry_ops.rotation_matrix(angle, ctx.height, ctx.width)
    shear_x, shear_y = param("ShearX"), param("ShearY")
    if "ShearX" in ctx.names or "ShearY" in ctx.names:
        matrix = tf.matmul(matrix, geometry_ops.shear_matrix(shear_x, shear_y, ctx.height, ctx.width))
    if "TranslateX" in ctx.names or "TranslateY" in ctx.names:
        dx, dy = param("TranslateX"), param("TranslateY")
        matrix = tf.matmul(matrix, geometry_ops.translation_matrix(dx, dy))
    return matrix
