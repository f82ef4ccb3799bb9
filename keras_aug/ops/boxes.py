"""Bounding-box ops: format conversion and the box side of every geometric op.

Boxes are dense `(B, N, 4)` float tensors. Inside the library they are `xyxy` in absolute pixel
EDGE coordinates, as Keras: the image spans `[0, W] x [0, H]` and pixel `i` covers `[i, i + 1]`.
The geometry ops put pixel CENTRES at integers (`keras_aug.ops.geometry`), so a box coordinate
`u` is the geometry coordinate `u - 0.5`; `warp_boxes` does that shift.

The formats are Keras 3's (`keras.utils.bounding_boxes.convert_format`), with its semantics:
`"xyxy"`, `"yxyx"`, `"xywh"`, `"center_xywh"`, `"center_yxhw"` in pixels and `"rel_xyxy"`,
`"rel_yxyx"`, `"rel_xywh"`, `"rel_center_xywh"` as fractions of the image width/height.
All functions are pure TensorFlow, batched (no per-image loops) and compile under
`tf.function(jit_compile=True)`.
"""
from __future__ import annotations

import tensorflow as tf

from keras_aug.ops.geometry import _adjugate

BOX_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw",
               "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh")

__all__ = [
    "BOX_FORMATS",
    "check_box_format",
    "clip_boxes",
    "convert_format",
    "crop_boxes",
    "filter_boxes",
    "flip_boxes",
    "from_xyxy",
    "resized_crop_boxes",
    "to_xyxy",
    "warp_boxes",
]


def check_box_format(name: str, value) -> str:
    """Validate a box format name (case-insensitive, as Keras) and return it in lower case."""
    if isinstance(value, str) and value.lower() in BOX_FORMATS:
        return value.lower()
    raise ValueError(f"{name} must be one of {list(BOX_FORMATS)}, got {value!r}")


def _f32(x) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def to_xyxy(boxes: tf.Tensor, source: str, height=None, width=None) -> tf.Tensor:
    """Boxes `(..., 4)` in `source` format -> absolute `xyxy` float32.

    `height`/`width` (numbers or scalar tensors) are needed for the `rel_` formats.
    """
    source = check_box_format("source", source)
    boxes = _f32(boxes)
    a, b, c, d = tf.unstack(boxes, num=4, axis=-1)
    rel = source.startswith("rel_")
    if rel:
        if height is None or width is None:
            raise ValueError(f"height and width are needed to convert from {source!r}")
        source = source[4:]
    if source == "xyxy":
        x1, y1, x2, y2 = a, b, c, d
    elif source == "yxyx":
        y1, x1, y2, x2 = a, b, c, d
    elif source == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif source == "center_xywh":
        x1, y1, x2, y2 = a - c / 2.0, b - d / 2.0, a + c / 2.0, b + d / 2.0
    else:  # center_yxhw
        x1, y1, x2, y2 = b - d / 2.0, a - c / 2.0, b + d / 2.0, a + c / 2.0
    if rel:
        w, h = _f32(width), _f32(height)
        x1, y1, x2, y2 = x1 * w, y1 * h, x2 * w, y2 * h
    return tf.stack([x1, y1, x2, y2], axis=-1)


def from_xyxy(boxes: tf.Tensor, target: str, height=None, width=None) -> tf.Tensor:
    """Absolute `xyxy` boxes `(..., 4)` -> `target` format (the inverse of `to_xyxy`)."""
    target = check_box_format("target", target)
    x1, y1, x2, y2 = tf.unstack(_f32(boxes), num=4, axis=-1)
    if target.startswith("rel_"):
        if height is None or width is None:
            raise ValueError(f"height and width are needed to convert to {target!r}")
        w, h = _f32(width), _f32(height)
        x1, y1, x2, y2 = x1 / w, y1 / h, x2 / w, y2 / h
        target = target[4:]
    if target == "xyxy":
        out = [x1, y1, x2, y2]
    elif target == "yxyx":
        out = [y1, x1, y2, x2]
    elif target == "xywh":
        out = [x1, y1, x2 - x1, y2 - y1]
    elif target == "center_xywh":
        out = [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1]
    else:  # center_yxhw
        out = [(y1 + y2) / 2.0, (x1 + x2) / 2.0, y2 - y1, x2 - x1]
    return tf.stack(out, axis=-1)


def convert_format(boxes: tf.Tensor, source: str, target: str, height=None,
                   width=None) -> tf.Tensor:
    """Convert boxes `(..., 4)` between formats, as `keras.utils.bounding_boxes.convert_format`.

    Args:
        boxes: float or integer tensor with last dimension 4.
        source, target: names from `BOX_FORMATS` (case-insensitive).
        height, width: image size, needed when either format is relative.

    Example:
        >>> convert_format([[10., 20., 30., 40.]], "xyxy", "center_xywh")  # [[20, 30, 20, 20]]
    """
    return from_xyxy(to_xyxy(boxes, source, height, width), target, height, width)


def flip_boxes(boxes: tf.Tensor, horizontal: tf.Tensor | None, vertical: tf.Tensor | None,
               height, width) -> tf.Tensor:
    """Mirror `xyxy` boxes (B, N, 4) like `geometry.flip`: exact, `x -> W - x` (x1, x2 swap)."""
    x1, y1, x2, y2 = tf.unstack(_f32(boxes), num=4, axis=-1)
    if horizontal is not None:
        w, flip = _f32(width), horizontal[:, None]
        x1, x2 = tf.where(flip, w - x2, x1), tf.where(flip, w - x1, x2)
    if vertical is not None:
        h, flip = _f32(height), vertical[:, None]
        y1, y2 = tf.where(flip, h - y2, y1), tf.where(flip, h - y1, y2)
    return tf.stack([x1, y1, x2, y2], axis=-1)


def warp_boxes(boxes: tf.Tensor, matrices: tf.Tensor) -> tf.Tensor:
    """Move `xyxy` boxes (B, N, 4) with the content of `geometry.warp(images, matrices)`.

    `matrices` are the warp's (B, 3, 3) OUTPUT->input matrices, so the four corners of each box
    go through their inverse (an adjugate: projective, the scale cancels), and the result is the
    box enclosing the four mapped corners. Exact for the quadrilateral an affine or projective map
    makes of a box (it stays a quadrilateral), hence a superset of the object after rotation.
    """
    forward = _adjugate(_f32(matrices))  # input -> output, up to scale
    x1, y1, x2, y2 = tf.unstack(_f32(boxes) - 0.5, num=4, axis=-1)  # edges -> pixel centres
    xs = tf.stack([x1, x2, x2, x1], axis=-1)  # (B, N, 4 corners)
    ys = tf.stack([y1, y1, y2, y2], axis=-1)
    m = [tf.reshape(v, [-1, 1, 1]) for v in tf.unstack(tf.reshape(forward, [-1, 9]), 9, axis=1)]
    z = m[6] * xs + m[7] * ys + m[8]
    # A corner on the horizon of a wild homography would divide by ~0; keep its sign.
    z = tf.where(z < 0, tf.minimum(z, -1e-6), tf.maximum(z, 1e-6))
    u = (m[0] * xs + m[1] * ys + m[2]) / z + 0.5
    v = (m[3] * xs + m[4] * ys + m[5]) / z + 0.5
    return tf.stack([tf.reduce_min(u, -1), tf.reduce_min(v, -1),
                     tf.reduce_max(u, -1), tf.reduce_max(v, -1)], axis=-1)


def crop_boxes(boxes: tf.Tensor, top: tf.Tensor, left: tf.Tensor) -> tf.Tensor:
    """`xyxy` boxes (B, N, 4) in the frame of a crop at per-sample offsets (B,): x - left, y - top.

    x goes with `left` and y with `top` (Keras 3.15's RandomCrop subtracts the row offset from x,
    keras#23518, which is wrong on every crop that is not at the same offset on both axes).
    """
    top, left = _f32(top)[:, None], _f32(left)[:, None]
    x1, y1, x2, y2 = tf.unstack(_f32(boxes), num=4, axis=-1)
    return tf.stack([x1 - left, y1 - top, x2 - left, y2 - top], axis=-1)


def resized_crop_boxes(boxes: tf.Tensor, crops: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """`xyxy` boxes (B, N, 4) through `geometry.resized_crop(images, crops, height, width)`.

    `crops` is (B, 4) `(top, left, crop_height, crop_width)`; the crop is stretched to
    `height x width`, so `x -> (x - left) * width / crop_width` (and likewise y).
    """
    top, left, crop_h, crop_w = [t[:, None] for t in tf.unstack(_f32(crops), num=4, axis=1)]
    sx, sy = float(width) / crop_w, float(height) / crop_h
    x1, y1, x2, y2 = tf.unstack(_f32(boxes), num=4, axis=-1)
    return tf.stack([(x1 - left) * sx, (y1 - top) * sy, (x2 - left) * sx, (y2 - top) * sy],
                    axis=-1)


def clip_boxes(boxes: tf.Tensor, height, width) -> tf.Tensor:
    """Clip `xyxy` boxes (..., 4) to the image `[0, width] x [0, height]`."""
    x1, y1, x2, y2 = tf.unstack(_f32(boxes), num=4, axis=-1)
    w, h = _f32(width), _f32(height)
    return tf.stack([tf.clip_by_value(x1, 0.0, w), tf.clip_by_value(y1, 0.0, h),
                     tf.clip_by_value(x2, 0.0, w), tf.clip_by_value(y2, 0.0, h)], axis=-1)


def _area(boxes: tf.Tensor) -> tf.Tensor:
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(
        boxes[..., 3] - boxes[..., 1], 0.0)


def filter_boxes(boxes: tf.Tensor, labels: tf.Tensor, height, width,
                 min_visibility: float = 0.0) -> tuple[tf.Tensor, tf.Tensor]:
    """Clip transformed `xyxy` boxes (B, N, 4) to the image and drop the ones that left it.

    A box is kept when its clipped area is > 0 and at least `min_visibility` of its area (before
    clipping, after the transform: albumentations' rule) lies inside the image. Dropped boxes,
    and input padding (label -1), get label -1 and coordinates 0: Keras' padding values
    (`densify_bounding_boxes`). Kept boxes are clipped to `[0, width] x [0, height]`.

    Returns:
        `(boxes, labels)` with the input shapes; labels keep their dtype.
    """
    boxes = _f32(boxes)
    clipped = clip_boxes(boxes, height, width)
    inside = _area(clipped)
    keep = (inside > 0.0) & (inside >= min_visibility * _area(boxes))
    keep &= tf.not_equal(labels, tf.cast(-1, labels.dtype))
    return (tf.where(keep[..., None], clipped, 0.0),
            tf.where(keep, labels, tf.cast(-1, labels.dtype)))
