"""Reading and resizing image files the way training and serving both do.

The folder loader and the exported SavedModel (`keras_aug.recipe.serving`) share these functions,
so a model is served the very pixels it was trained on: files TensorFlow can decode (JPEG, PNG,
GIF, BMP, WebP) are decoded by `tf.io.decode_image`, as the SavedModel's `serve_encoded` does
(Pillow's JPEG decoder differs from TensorFlow's by a few levels), and every resize is
`resize_images`. Pillow reads the headers (mode and size without decoding pixels) and decodes
the formats TensorFlow cannot (TIFF, ...).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TF_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")  # Pillow's format names tf.io.decode_image reads
GRAY_MODES = ("1", "L", "LA", "I", "F")  # plus "I;16*"; "P"/"PA" are gray when their palette is


@dataclass(frozen=True)
class ImageHeader:
    """What Pillow's header pass tells about a file: its format, whether it is colour, its size."""

    format: str
    colour: bool
    height: int
    width: int


def read_header(file: Path) -> ImageHeader:
    """The header of an image file, without decoding its pixels (raises OSError if unreadable)."""
    from PIL import Image

    with Image.open(file) as im:
        return ImageHeader(im.format or "", _is_colour(im), im.height, im.width)


def _is_colour(im) -> bool:
    if im.mode in GRAY_MODES or im.mode.startswith("I;16"):
        return False
    if im.mode in ("P", "PA") and im.palette is not None:
        entries = np.frombuffer(im.palette.tobytes(), np.uint8).reshape(-1, len(im.palette.mode))
        return not (entries[:, :3] == entries[:, :1]).all()
    return True


def decode_file(file: Path, header: ImageHeader, channels: int) -> tf.Tensor:
    """A file's pixels as uint8 `(height, width, channels)` (raises on a corrupt file).

    16-bit images keep their high byte (what `tf.io.decode_image` does); alpha is dropped.
    """
    if header.format in TF_FORMATS:
        return decode_image(file.read_bytes(), channels)
    from PIL import Image

    with Image.open(file) as im:
        if im.mode.startswith("I;16"):
            im = Image.fromarray((np.asarray(im, np.uint16) >> 8).astype(np.uint8))
        array = np.asarray(im.convert("L" if channels == 1 else "RGB"), np.uint8)
    return tf.constant(array.reshape(*array.shape[:2], channels))


def decode_image(data: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP/WebP bytes as uint8 `(height, width, channels)`, graph-friendly.

    `tf.io.decode_image`, first frame only; a GIF is decoded as RGB then converted to gray when
    `channels=1` (TensorFlow's GIF decoder has no grayscale output).
    """
    if channels == 3:
        return tf.io.decode_image(data, channels=3, expand_animations=False)

    def gif_to_gray():
        rgb = tf.cast(tf.io.decode_image(data, channels=3, expand_animations=False), tf.float32)
        return tf.cast(tf.round(tf.image.rgb_to_grayscale(rgb)), tf.uint8)

    is_gif = tf.equal(tf.strings.substr(data, 0, 3), "GIF")
    return tf.cond(is_gif, gif_to_gray, lambda: tf.io.decode_image(data, channels=1, expand_animations=False))


def resize_images(images, image_size: tuple[int, int]) -> tf.Tensor:
    """Resize uint8 images (one `(H, W, C)` or a batch) to `image_size`, antialiased, as uint8.

    Bilinear with antialiasing (a downscale averages every source pixel, so small details do not
    alias), rounded to uint8. The folder loader and the exported SavedModel both call it, so
    training and serving see the same pixels. A resize to the same size returns the input.

    Args:
        images: uint8 (or integer-valued float) tensor of rank 3 or 4, values 0..255.
        image_size: `(height, width)` of the result.

    Example:
        >>> image = np.zeros((40, 50, 3), np.uint8)
        >>> resize_images(image, (32, 32)).shape
        TensorShape([32, 32, 3])
    """
    height, width = check_image_size(image_size)
    resized = tf.image.resize(images, (height, width), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def check_image_size(image_size) -> tuple[int, int]:
    """`image_size` as `(height, width)` positive integers, or a ValueError naming it."""
    valid = (not isinstance(image_size, (str, bytes)) and hasattr(image_size, "__len__")
             and len(image_size) == 2 and all(_is_positive_int(v) for v in image_size))
    if not valid:
        raise ValueError(f"image_size must be (height, width), two integers >= 1, got {image_size!r}")
    return int(image_size[0]), int(image_size[1])


def check_channels(channels) -> int:
    """`channels` as 1 or 3, or a ValueError naming it."""
    if not _is_positive_int(channels) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return int(channels)


def _is_positive_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1
