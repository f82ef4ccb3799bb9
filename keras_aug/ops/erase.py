"""Erasing ops: per-sample boxes and grids turned into masks by comparing coordinate grids.

Every mask here is built by broadcasting a row test `(B, ..., H, 1)` against a column test
`(B, ..., 1, W)`: no per-image loops, no scatter, so the ops compile with XLA and stay
differentiable with respect to the images (`tf.where` passes gradients to the kept pixels).

Box convention: a box `(y0, x0, y1, x1)` in pixel edges covers rows `y0 <= i < y1` and columns
`x0 <= j < x1` after rounding the edges to integers and clipping them to the image; a box with
`y1 <= y0` or `x1 <= x0` covers nothing (the identity).
"""
from __future__ import annotations

import tensorflow as tf


def box_edges(
    center_y: tf.Tensor, center_x: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
    image_height, image_width,
) -> tf.Tensor:
    """Boxes given by centre and size (pixels, any shape `S`) -> integer edges `S + (4,)`.

    Edges are `(y0, x0, y1, x1)`, rounded (`y0 = round(cy - h/2)`, `y1 = y0 + round(h)`) and then
    clipped to the image, so the covered area is exactly `(y1 - y0) * (x1 - x0)`.
    """
    height = tf.maximum(tf.round(tf.cast(height, tf.float32)), 0.0)
    width = tf.maximum(tf.round(tf.cast(width, tf.float32)), 0.0)
    y0 = tf.round(tf.cast(center_y, tf.float32) - height / 2)
    x0 = tf.round(tf.cast(center_x, tf.float32) - width / 2)
    h, w = tf.cast(image_height, tf.float32), tf.cast(image_width, tf.float32)
    edges = tf.stack(
        [tf.clip_by_value(y0, 0.0, h), tf.clip_by_value(x0, 0.0, w),
         tf.clip_by_value(y0 + height, 0.0, h), tf.clip_by_value(x0 + width, 0.0, w)],
        axis=-1,
    )
    return tf.cast(edges, tf.int32)


def box_area(edges: tf.Tensor) -> tf.Tensor:
    """Covered pixel count of integer edges `(..., 4)` from `box_edges` (0 for empty boxes)."""
    return tf.maximum(edges[..., 2] - edges[..., 0], 0) * tf.maximum(edges[..., 3] - edges[..., 1], 0)


def box_mask(edges: tf.Tensor, image_height, image_width) -> tf.Tensor:
    """Boolean mask `S + (H, W)` of integer edges `S + (4,)`: True inside each box."""
    rows = tf.range(image_height, dtype=tf.int32)
    cols = tf.range(image_width, dtype=tf.int32)
    e = edges[..., None]
    in_rows = (rows >= e[..., 0, :]) & (rows < e[..., 2, :])  # S + (H,)
    in_cols = (cols >= e[..., 1, :]) & (cols < e[..., 3, :])  # S + (W,)
    return in_rows[..., :, None] & in_cols[..., None, :]


def cutout(
    images: tf.Tensor,
    center_y: tf.Tensor,
    center_x: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    fill_value=0.0,
) -> tf.Tensor:
    """Fill one box per image with `fill_value`; the box is clipped to the image.

    Args:
        images: `(B, H, W, C)` float images.
        center_y, center_x, height, width: per-sample `(B,)` box centre and size in pixels
            (floats; rounded to whole pixels). `height` or `width` 0 leaves the image unchanged.
        fill_value: a number, or anything broadcastable to `(B, H, W, C)` (e.g. `(B, 1, 1, C)`
            per-sample colours, or a `(B, H, W, C)` noise image).

    Returns:
        Images of the same shape and dtype. Differentiable with respect to `images` (zero
        gradient inside the box); XLA-compilable. DiffAugment and AutoAugment's Cutout call this.
    """
    shape = tf.shape(images)
    edges = box_edges(center_y, center_x, height, width, shape[1], shape[2])
    mask = box_mask(edges, shape[1], shape[2])[..., None]  # (B, H, W, 1)
    fill = tf.cast(fill_value, images.dtype)
    return tf.where(mask, fill, images)


def erase_boxes(images: tf.Tensor, edges: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
    """Erase up to N boxes per image, each with its own fill.

    Args:
        images: `(B, H, W, C)` float images.
        edges: integer box edges `(B, N, 4)` as returned by `box_edges`; an empty box (e.g.
            `y1 <= y0`) erases nothing, so images may carry different numbers of boxes.
        fill: `(B, N, C)` one colour per box (constant or random-colour erasing), or a
            `(B, H, W, C)` image shared by all boxes of a sample (per-pixel noise erasing), or a
            number.

    Where boxes overlap, the later box's fill wins. Returns images of the same shape and dtype.
    """
    shape = tf.shape(images)
    masks = box_mask(edges, shape[1], shape[2])  # (B, N, H, W)
    fill = tf.cast(fill, images.dtype)
    if fill.shape.rank == 3:  # per-box colours: pick the last box covering each pixel
        n = tf.shape(edges)[1]
        order = tf.range(1, n + 1, dtype=tf.int32)[None, :, None, None]
        which = tf.reduce_max(tf.where(masks, order, 0), axis=1)  # (B, H, W), 0 = not erased
        colours = tf.concat([tf.zeros_like(fill[:, :1]), fill], axis=1)  # (B, N + 1, C)
        values = tf.gather(colours, which, batch_dims=1)  # (B, H, W, C)
        return tf.where((which > 0)[..., None], values, images)
    erased = tf.reduce_any(masks, axis=1)[..., None]
    return tf.where(erased, fill, images)


def grid_mask(
    image_height, image_width, unit: tf.Tensor, hole: tf.Tensor,
    offset_y: tf.Tensor, offset_x: tf.Tensor,
) -> tf.Tensor:
    """GridMask's erased region `(B, H, W)`: square holes of side `hole` on a grid of period `unit`.

    Per sample `(B,)` floats in pixels: pixel `(i, j)` is erased when `(i + offset_y) mod unit <
    hole` and `(j + offset_x) mod unit < hole`. `hole = 0` erases nothing.
    """
    # frac((i + offset + 0.5) / unit) < hole / unit is the integer test `(i + offset) mod unit <
    # hole` with pixel centres half a pixel away from every boundary (robust to rounding); it avoids a per-pixel modulo (XLA fuses
    # this test into the per-pixel select, where a float modulo is several times slower).
    rows = tf.range(image_height, dtype=tf.float32)[None, :]
    cols = tf.range(image_width, dtype=tf.float32)[None, :]
    inv_unit = 1.0 / tf.cast(unit, tf.float32)[:, None]
    limit = tf.cast(hole, tf.float32)[:, None] * inv_unit

    def inside(coords, offset):
        t = (coords + tf.cast(offset, tf.float32)[:, None] + 0.5) * inv_unit
        return t - tf.floor(t) < limit

    return inside(rows, offset_y)[:, :, None] & inside(cols, offset_x)[:, None, :]
