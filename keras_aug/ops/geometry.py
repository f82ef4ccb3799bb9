"""Geometric ops: exact index ops (flip, crop) and one-pass warps from per-sample 3x3 matrices.

Coordinates: `x` is the column, `y` the row, pixel centres sit at integers, so the image spans
`[-0.5, W - 0.5] x [-0.5, H - 0.5]` and its centre is `((W - 1) / 2, (H - 1) / 2)`.

Matrices are batched `(B, 3, 3)` float32 and map OUTPUT pixel coordinates to INPUT coordinates
(the convention of `ImageProjectiveTransformV3` and of PIL's `Image.transform`): the output pixel
at `(x, y)` takes the input value at `M @ (x, y, 1)` (divided by its third component). Because of
that, warping by `A` and then by `B` equals one warp by `A @ B`; `compose(A, B, C)` is the matrix
of "first A, then B, then C" and costs one resampling pass instead of three.

Every builder describes the motion of the CONTENT (rotate it by +angle counter-clockwise on
screen, move it right by dx, enlarge it by zoom > 1, ...) and returns the output->input matrix that
realizes it. All ops are pure TensorFlow, deterministic and compile under
`tf.function(jit_compile=True)`; `warp` is a gather-based resampler because TF 2.21 has no XLA
kernel for `ImageProjectiveTransformV3` (and the gather version compiled with XLA is faster on CPU,
see `benchmarks/layers.py`).
"""
from __future__ import annotations

import tensorflow as tf

INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("constant", "reflect", "nearest", "wrap")

__all__ = [
    "FILL_MODES",
    "INTERPOLATIONS",
    "compose",
    "crop",
    "flip",
    "flip_matrix",
    "identity_matrix",
    "perspective_matrix",
    "resized_crop",
    "rotation_matrix",
    "shear_matrix",
    "translation_matrix",
    "warp",
    "zoom_matrix",
]


# --------------------------------------------------------------------------- exact index ops
def flip(images: tf.Tensor, horizontal: tf.Tensor | None, vertical: tf.Tensor | None) -> tf.Tensor:
    """Per-sample flips; `horizontal`/`vertical` are bool (B,), or None to skip that axis at no
    cost. Exact, no interpolation, any dtype."""
    if horizontal is not None:
        images = tf.where(horizontal[:, None, None, None], tf.reverse(images, axis=[2]), images)
    if vertical is not None:
        images = tf.where(vertical[:, None, None, None], tf.reverse(images, axis=[1]), images)
    return images


def crop(images: tf.Tensor, offset_y: tf.Tensor, offset_x: tf.Tensor, height: int,
         width: int) -> tf.Tensor:
    """Per-sample crops of a static `height x width` at integer offsets (B,), by one index gather.

    Exact (no interpolation) and for any dtype. Offsets must keep the crop inside the image; they
    are clipped to `[0, H - height]` / `[0, W - width]` so that a bad offset cannot read outside.
    """
    shape = tf.shape(images)
    b, h_in, w_in = shape[0], shape[1], shape[2]
    offset_y = tf.clip_by_value(tf.cast(offset_y, tf.int32), 0, h_in - height)
    offset_x = tf.clip_by_value(tf.cast(offset_x, tf.int32), 0, w_in - width)
    rows = offset_y[:, None] + tf.range(height)[None]  # (B, h)
    cols = offset_x[:, None] + tf.range(width)[None]  # (B, w)
    index = (tf.range(b)[:, None, None] * h_in + rows[:, :, None]) * w_in + cols[:, None, :]
    flat = tf.reshape(images, [-1, tf.shape(images)[3]])
    out = tf.gather(flat, tf.reshape(index, [-1]))
    return tf.reshape(out, [b, height, width, images.shape[3] or tf.shape(images)[3]])


def resized_crop(images: tf.Tensor, boxes: tf.Tensor, height: int, width: int,
                 interpolation: str = "bilinear") -> tf.Tensor:
    """Crop each image to its box and resize the crop to a static `height x width`.

    `boxes` is (B, 4) float `(top, left, box_height, box_width)` in pixels (edges: a full image is
    `(0, 0, H, W)`). The result equals cropping, then `tf.image.resize` (half-pixel centres, edge
    pixels of the box repeated outside it), as torchvision's `resized_crop` with
    `antialias=False`: when a box is much larger than the output, small details alias.
    `"nearest"` works for any dtype (masks); `"bilinear"` needs float images.

    Separable, as a resize is: each axis is two row gathers (contiguous rows, so cheap) and one
    blend, with a transpose between the axes; about 10 % less CPU than the 2-D bilinear `warp`
    (four gathers of single pixels), see `benchmarks/layers.py`.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}")
    if interpolation == "bilinear" and not images.dtype.is_floating:
        raise TypeError(f"bilinear resized_crop needs float images, got dtype {images.dtype.name}; "
                        "use interpolation='nearest' for integer images such as masks")
    top, left, box_h, box_w = tf.unstack(tf.cast(boxes, tf.float32), axis=1)
    shape = tf.shape(images)
    rows = _resize_taps(top, box_h, height, shape[1], interpolation)
    cols = _resize_taps(left, box_w, width, shape[2], interpolation)
    out = _resample_rows(images, *rows)  # (B, height, W, C)
    out = _resample_rows(tf.transpose(out, [0, 2, 1, 3]), *cols)  # (B, width, height, C)
    return tf.transpose(out, [0, 2, 1, 3])


def _resize_taps(start: tf.Tensor, length: tf.Tensor, size_out: int, size_in, interpolation: str):
    """Source rows of a resize along one axis: (B, size_out) int32 indices `i0`, `i1` and the
    weight of `i1` (None for nearest), half-pixel centres, clamped to the box and the image."""
    size_in_f = tf.cast(size_in, tf.float32)
    centre = (tf.range(size_out, dtype=tf.float32)[None] + 0.5) * (length / size_out)[:, None]
    pos = start[:, None] + centre
    if interpolation == "nearest":
        return tf.clip_by_value(tf.cast(tf.floor(pos), tf.int32), 0, size_in - 1), None, None
    low = tf.maximum(start, 0.0)[:, None]
    high = tf.minimum(start + length, size_in_f)[:, None] - 1.0
    pos = tf.clip_by_value(pos - 0.5, low, tf.maximum(high, low))
    i0 = tf.floor(pos)
    weight = pos - i0
    i0 = tf.cast(i0, tf.int32)
    return i0, tf.minimum(i0 + 1, size_in - 1), weight


def _resample_rows(images: tf.Tensor, i0: tf.Tensor, i1: tf.Tensor | None,
                   weight: tf.Tensor | None) -> tf.Tensor:
    """Rows `i0` (B, n) of each image, blended with rows `i1` by `weight` when given."""
    first = tf.gather(images, i0, axis=1, batch_dims=1)
    if weight is None:
        return first
    second = tf.gather(images, i1, axis=1, batch_dims=1)
    return first + (second - first) * tf.cast(weight[:, :, None, None], images.dtype)


def resized_crop_matrix(boxes: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Output->input matrices (B, 3, 3) of a resized crop (half-pixel centres), to compose it
    with other geometry into one warp (which, unlike `resized_crop`, is not clamped to the box)."""
    boxes = tf.cast(boxes, tf.float32)
    top, left, box_h, box_w = tf.unstack(boxes, axis=1)
    sy = box_h / float(height)
    sx = box_w / float(width)
    zeros, ones = tf.zeros_like(sx), tf.ones_like(sx)
    return tf.reshape(
        tf.stack([sx, zeros, left + 0.5 * sx - 0.5,
                  zeros, sy, top + 0.5 * sy - 0.5,
                  zeros, zeros, ones], axis=1), [-1, 3, 3])


# --------------------------------------------------------------------------- matrices
def identity_matrix(batch_size) -> tf.Tensor:
    """(B, 3, 3) identity: the parameter value that leaves images unchanged."""
    return tf.eye(3, batch_shape=[batch_size], dtype=tf.float32)


def _matrix(rows) -> tf.Tensor:
    """Nine (B,) tensors in row-major order -> (B, 3, 3)."""
    return tf.reshape(tf.stack(rows, axis=1), [-1, 3, 3])


def _centre(height, width):
    """Image centre (cx, cy); height/width may be Python numbers or scalar tensors."""
    return (_f32(width) - 1.0) / 2.0, (_f32(height) - 1.0) / 2.0


def _f32(x) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def rotation_matrix(angles: tf.Tensor, height, width) -> tf.Tensor:
    """Rotate the content by `angles` radians (B,) counter-clockwise on screen, about the centre.

    `angles = pi / 2` with nearest interpolation on a square image equals `tf.image.rot90(k=1)`.
    """
    angles = _f32(angles)
    cx, cy = _centre(height, width)
    c, s = tf.cos(angles), tf.sin(angles)
    zeros, ones = tf.zeros_like(c), tf.ones_like(c)
    # x_in = c (x - cx) - s (y - cy) + cx ; y_in = s (x - cx) + c (y - cy) + cy
    return _matrix([c, -s, cx - c * cx + s * cy,
                    s, c, cy - s * cx - c * cy,
                    zeros, zeros, ones])


def shear_matrix(shear_x: tf.Tensor, shear_y: tf.Tensor, height, width) -> tf.Tensor:
    """Shear by factors (B,) about the centre, PIL/AutoAugment convention.

    `x_in = x + shear_x * (y - cy)` and `y_in = y + shear_y * (x - cx)` (both at once). ShearX
    with factor s is PIL's `Image.transform(AFFINE, (1, s, 0, 0, 1, 0))` about the centre, as in
    torchvision's AutoAugment; `shear_x = tan(angle)` for a shear angle.
    """
    sx, sy = _f32(shear_x), _f32(shear_y)
    cx, cy = _centre(height, width)
    zeros, ones = tf.zeros_like(sx), tf.ones_like(sx)
    return _matrix([ones, sx, -sx * cy,
                    sy, ones, -sy * cx,
                    zeros, zeros, ones])


def translation_matrix(dx: tf.Tensor, dy: tf.Tensor) -> tf.Tensor:
    """Move the content by (dx, dy) pixels (B,): positive dx moves it right, positive dy down."""
    dx, dy = _f32(dx), _f32(dy)
    zeros, ones = tf.zeros_like(dx), tf.ones_like(dx)
    return _matrix([ones, zeros, -dx, zeros, ones, -dy, zeros, zeros, ones])


def zoom_matrix(zoom_x: tf.Tensor, zoom_y: tf.Tensor, height, width) -> tf.Tensor:
    """Scale the content about the centre by (B,) factors: > 1 enlarges (zooms in), < 1 shrinks.

    Note Keras' `RandomZoom(f)` samples the INPUT extent: its factor f is a content zoom of
    `1 / (1 + f)` (positive f zooms out); `keras_aug.layers.RandomZoom` keeps that convention.
    """
    zx, zy = _f32(zoom_x), _f32(zoom_y)
    cx, cy = _centre(height, width)
    zeros, ones = tf.zeros_like(zx), tf.ones_like(zx)
    return _matrix([1.0 / zx, zeros, cx - cx / zx,
                    zeros, 1.0 / zy, cy - cy / zy,
                    zeros, zeros, ones])


def flip_matrix(horizontal: tf.Tensor, vertical: tf.Tensor, height, width) -> tf.Tensor:
    """Mirror the content left-right where `horizontal` and top-bottom where `vertical` (bool (B,)).

    Use this only to fuse a flip into a larger warp; alone, `flip` is exact and much cheaper.
    """
    h = tf.where(tf.cast(horizontal, tf.bool), -1.0, 1.0)
    v = tf.where(tf.cast(vertical, tf.bool), -1.0, 1.0)
    zeros, ones = tf.zeros_like(h), tf.ones_like(h)
    w1, h1 = _f32(width) - 1.0, _f32(height) - 1.0
    return _matrix([h, zeros, (1.0 - h) / 2.0 * w1,
                    zeros, v, (1.0 - v) / 2.0 * h1,
                    zeros, zeros, ones])


def perspective_matrix(start_points: tf.Tensor, end_points: tf.Tensor) -> tf.Tensor:
    """Homography that moves the content at `start_points` to `end_points`, each (B, 4, 2) (x, y).

    As torchvision's `perspective(startpoints, endpoints)`: four point pairs (e.g. the image
    corners and where they should land, in order around the quadrilateral) fix the 8 degrees of
    freedom. Closed form (Heckbert's unit-square-to-quad mapping and a 3x3 adjugate), so it
    compiles quickly under XLA. Returns the output->input matrix (it maps `end_points` to
    `start_points`).
    """
    to_input = _square_to_quad(_f32(start_points))
    to_output = _square_to_quad(_f32(end_points))
    m = _matmul3(to_input, _adjugate(to_output))
    return m / m[:, 2:3, 2:3]


def _square_to_quad(q: tf.Tensor) -> tf.Tensor:
    """(B, 4, 2) quad -> (B, 3, 3) homography sending (0,0),(1,0),(1,1),(0,1) to its corners."""
    x0, x1, x2, x3 = tf.unstack(q[..., 0], axis=1)
    y0, y1, y2, y3 = tf.unstack(q[..., 1], axis=1)
    dx1, dx2, dx3 = x1 - x2, x3 - x2, x0 - x1 + x2 - x3
    dy1, dy2, dy3 = y1 - y2, y3 - y2, y0 - y1 + y2 - y3
    det = dx1 * dy2 - dx2 * dy1
    gx = (dx3 * dy2 - dx2 * dy3) / det
    hy = (dx1 * dy3 - dx3 * dy1) / det
    ones = tf.ones_like(x0)
    return _matrix([x1 - x0 + gx * x1, x3 - x0 + hy * x3, x0,
                    y1 - y0 + gx * y1, y3 - y0 + hy * y3, y0,
                    gx, hy, ones])


def _adjugate(m: tf.Tensor) -> tf.Tensor:
    """Adjugate of (B, 3, 3): the inverse up to a scale, which a projective matrix ignores."""
    r0, r1, r2 = m[:, 0], m[:, 1], m[:, 2]

    def cross(a, b):
        return tf.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                         a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                         a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)

    return tf.stack([cross(r1, r2), cross(r2, r0), cross(r0, r1)], axis=2)


def compose(*matrices: tf.Tensor) -> tf.Tensor:
    """One matrix for "apply the first, then the second, ..." (output->input matrices multiply in
    the same order: `compose(A, B) = A @ B`). Applying it with `warp` resamples once."""
    if not matrices:
        raise ValueError("compose needs at least one matrix, got none")
    out = _f32(matrices[0])
    for m in matrices[1:]:
        out = _matmul3(out, _f32(m))
    return out


def _matmul3(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Batched 3x3 product as broadcast multiply-adds: XLA compiles it much faster than a dot."""
    return tf.reduce_sum(a[:, :, :, None] * b[:, None, :, :], axis=2)


# --------------------------------------------------------------------------- resampling
def warp(images: tf.Tensor, matrices: tf.Tensor, interpolation: str = "bilinear",
         fill_mode: str = "constant", fill_value: float = 0.0,
         output_size: tuple | None = None) -> tf.Tensor:
    """Resample each image (B, H, W, C) through its output->input matrix (B, 3, 3), in one pass.

    Args:
        images: float images (B, H, W, C); with `interpolation="nearest"` any dtype (e.g. masks).
        matrices: (B, 3, 3) output->input matrices (projective; see the module docstring).
        interpolation: `"bilinear"` or `"nearest"`.
        fill_mode: how points outside the input are read: `"constant"` (`fill_value`; bilinear
            blends it at the border like ImageProjectiveTransformV3), `"reflect"` (d c b a | a b c d
            | d c b a, the edge pixel repeated, as Keras/TF), `"nearest"` (edge pixel),
            `"wrap"` (a b c d | a b c d).
        fill_value: value for `"constant"`, in the images' units.
        output_size: `(height, width)` of the output (default: the input's), e.g. for a crop
            composed into the matrix.

    Gather-based: the batch is flattened to (B*H*W, C) and each of the 4 (bilinear) or 1
    (nearest) source pixels is one `tf.gather`, so it compiles with XLA and is differentiable with
    respect to `images` (and `matrices`, through the bilinear weights).
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {list(FILL_MODES)}, got {fill_mode!r}")
    if images.shape.rank != 4:
        raise ValueError(f"images must have rank 4 (B, H, W, C), got shape {images.shape}")
    shape = tf.shape(images)
    if output_size is None:
        height = images.shape[1] if images.shape[1] is not None else shape[1]
        width = images.shape[2] if images.shape[2] is not None else shape[2]
    else:
        height, width = output_size
    return _resample(images, matrices, height, width, interpolation, fill_mode, fill_value)


def _map_index(index: tf.Tensor, size, fill_mode: str):
    """Integer source indices -> (indices inside [0, size), validity mask or None)."""
    if fill_mode == "constant":
        valid = (index >= 0) & (index < size)
        return tf.clip_by_value(index, 0, size - 1), valid
    if fill_mode == "nearest":
        return tf.clip_by_value(index, 0, size - 1), None
    if fill_mode == "wrap":
        return tf.math.floormod(index, size), None
    period = tf.math.floormod(index, 2 * size)  # reflect: abcd -> dcba|abcd|dcba
    return tf.where(period < size, period, 2 * size - 1 - period), None


def _resample(images: tf.Tensor, matrices: tf.Tensor, out_h, out_w, interpolation: str,
              fill_mode: str, fill_value) -> tf.Tensor:
    shape = tf.shape(images)
    b, h_in, w_in = shape[0], shape[1], shape[2]
    channels = images.shape[3] if images.shape[3] is not None else shape[3]
    m = tf.reshape(_f32(matrices), [-1, 9])
    # Each entry (B, 1, 1) by reshape: TF 2.21's Grappler arithmetic optimizer drops the new axes
    # of `m[:, i, None, None]` here in graph mode (shape (B,) instead of (B, 1, 1)), which silently
    # mixed up images and columns outside XLA.
    m = [tf.reshape(v, [-1, 1, 1]) for v in tf.unstack(m, num=9, axis=1)]
    xs = tf.cast(tf.range(out_w), tf.float32)[None, None, :]
    ys = tf.cast(tf.range(out_h), tf.float32)[None, :, None]
    x_in = m[0] * xs + m[1] * ys + m[2]
    y_in = m[3] * xs + m[4] * ys + m[5]
    z = m[6] * xs + m[7] * ys + m[8]
    # An affine matrix has z == 1; the division is cheap next to the gathers.
    x_in, y_in = x_in / z, y_in / z
    # Keep int32 casts safe for wild (e.g. near-singular perspective) coordinates.
    limit = 4.0 * tf.cast(tf.maximum(h_in, w_in), tf.float32) + 4.0
    x_in = tf.clip_by_value(x_in, -limit, limit)
    y_in = tf.clip_by_value(y_in, -limit, limit)
    flat = tf.reshape(images, [-1, channels])
    base = tf.range(b)[:, None, None] * (h_in * w_in)
    out_shape = [b, out_h, out_w, channels]

    def gather(rows, cols):
        return tf.reshape(tf.gather(flat, tf.reshape(rows + cols, [-1])), out_shape)

    if interpolation == "nearest":
        yi, vy = _map_index(tf.cast(tf.floor(y_in + 0.5), tf.int32), h_in, fill_mode)
        xi, vx = _map_index(tf.cast(tf.floor(x_in + 0.5), tf.int32), w_in, fill_mode)
        values = gather(base + yi * w_in, xi)
        if vy is None:
            return values
        return tf.where((vy & vx)[..., None], values, tf.cast(fill_value, images.dtype))

    if not images.dtype.is_floating:
        raise TypeError(
            f"bilinear warp needs float images, got dtype {images.dtype.name}; "
            "use interpolation='nearest' for integer images such as masks")
    x0f, y0f = tf.floor(x_in), tf.floor(y_in)
    x0, y0 = tf.cast(x0f, tf.int32), tf.cast(y0f, tf.int32)
    # Index maps and weights per axis (computed once, shared by the 4 corners); in constant
    # mode a corner outside the image gets weight 0 and its share goes to fill_value.
    wx1, wy1 = x_in - x0f, y_in - y0f
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    c0, vx0 = _map_index(x0, w_in, fill_mode)
    c1, vx1 = _map_index(x0 + 1, w_in, fill_mode)
    r0, vy0 = _map_index(y0, h_in, fill_mode)
    r1, vy1 = _map_index(y0 + 1, h_in, fill_mode)
    if vx0 is not None:
        wx0, wx1 = tf.where(vx0, wx0, 0.0), tf.where(vx1, wx1, 0.0)
        wy0, wy1 = tf.where(vy0, wy0, 0.0), tf.where(vy1, wy1, 0.0)
    r0, r1 = base + r0 * w_in, base + r1 * w_in
    out = None
    for rows, wy in ((r0, wy0), (r1, wy1)):
        for cols, wx in ((c0, wx0), (c1, wx1)):
            term = gather(rows, cols) * tf.cast((wy * wx)[..., None], images.dtype)
            out = term if out is None else out + term
    if vx0 is not None and not (isinstance(fill_value, (int, float)) and fill_value == 0):
        inside = (wy0 + wy1) * (wx0 + wx1)
        out = out + tf.cast((1.0 - inside)[..., None] * fill_value, images.dtype)
    return out


def _warp_v3(images: tf.Tensor, matrices: tf.Tensor, interpolation: str = "bilinear",
             fill_mode: str = "constant", fill_value: float = 0.0) -> tf.Tensor:
    """The same warp through `ImageProjectiveTransformV3` (no XLA kernel): for tests/benchmarks."""
    m = tf.reshape(_f32(matrices), [-1, 9])
    m = m / m[:, 8:9]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=m[:, :8], output_shape=tf.shape(images)[1:3],
        fill_value=tf.cast(fill_value, tf.float32), interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper())

