"""Bounding boxes in the engine: input checks, the layer's box step, and which layers take boxes.

Input: the Keras 3 dict key `"bounding_boxes"` = `{"boxes": (B, N, 4), "labels": (B, N)}` (or
`(N, 4)` / `(N,)` with a single image), in the layer's `bounding_box_format`. Ragged boxes are
densified with Keras' padding (coordinates 0, label -1). Boxes become float32 (as Keras); labels
keep their dtype.

A layer's box step: convert to absolute `xyxy` on the input image, `layer.augment_bounding_boxes`
(the layer's own geometry, unclipped), keep the input boxes where `p` left the image alone, then
`ops.boxes.filter_boxes` (clip, visibility rule, label -1) and convert back to the format on the
OUTPUT image (crops change its size). Layers that move no pixels (colour, erasing: `KeepsBoxes`)
return the boxes exactly as given; layers that cannot transform boxes raise before tracing.
"""
from __future__ import annotations

import numbers

import tensorflow as tf

from keras_aug.ops import boxes as box_ops

BOXES = "bounding_boxes"


class KeepsBoxes:
    """Mixin of layers that change pixel values but move none: boxes come back as given.

    Erasing layers use it too, as Keras: an erased object keeps its box (boxes are not shrunk).
    """

    boxes_unchanged = True


def check_box_arguments(bounding_box_format, min_visibility) -> tuple[str | None, float]:
    """Validate the layer arguments `bounding_box_format` (None allowed) and `min_visibility`."""
    if bounding_box_format is not None:
        bounding_box_format = box_ops.check_box_format("bounding_box_format", bounding_box_format)
    if (isinstance(min_visibility, bool) or not isinstance(min_visibility, numbers.Real)
            or not 0.0 <= min_visibility <= 1.0):
        raise ValueError(
            f"min_visibility must be a number in [0, 1] (the fraction of a box's area that must "
            f"stay inside the image), got {min_visibility!r}")
    return bounding_box_format, float(min_visibility)


def standardize_bounding_boxes(value, images: tf.Tensor) -> dict:
    """The `"bounding_boxes"` input -> `{"boxes": float32, "labels": ...}` dense tensors, checked
    against the images' rank and batch size (static shapes)."""
    if not isinstance(value, dict) or "boxes" not in value or "labels" not in value:
        keys = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(
            f"bounding_boxes must be a dict with 'boxes' (..., N, 4) and 'labels' (..., N), "
            f"got {keys}")
    boxes, labels = value["boxes"], value["labels"]
    if isinstance(boxes, tf.RaggedTensor):
        boxes = boxes.to_tensor(default_value=0.0)
    if isinstance(labels, tf.RaggedTensor):
        labels = labels.to_tensor(default_value=-1)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    labels = tf.convert_to_tensor(labels)
    rank = images.shape.rank - 1  # (B, N, 4) for a batch, (N, 4) for one image
    if boxes.shape.rank != rank or boxes.shape[-1] != 4:
        what = "a batch (B, H, W, C)" if rank == 3 else "one image (H, W, C)"
        raise ValueError(
            f"bounding_boxes['boxes'] must have shape {'(B, N, 4)' if rank == 3 else '(N, 4)'} "
            f"for {what}, got shape {boxes.shape} with images of shape {images.shape}")
    if labels.shape.rank != rank - 1 or not labels.shape.is_compatible_with(boxes.shape[:-1]):
        raise ValueError(
            f"bounding_boxes['labels'] must have shape {tuple(boxes.shape[:-1])} (one class id "
            f"per box), got shape {labels.shape}")
    if rank == 3 and not boxes.shape[:1].is_compatible_with(images.shape[:1]):
        raise ValueError(
            f"bounding_boxes['boxes'] has batch size {boxes.shape[0]} but images have "
            f"{images.shape[0]}")
    return {"boxes": boxes, "labels": labels}


def check_layer_takes_boxes(layer) -> None:
    """Raise a clear error before tracing when `layer` cannot take boxes as configured."""
    name = type(layer).__name__
    reason = getattr(layer, "refuses_boxes", None)
    if reason:
        raise ValueError(f"{name} cannot transform bounding boxes: {reason}")
    if getattr(layer, "boxes_unchanged", False):
        return
    if layer.bounding_box_format is None:
        raise ValueError(
            f"{name} got 'bounding_boxes' but bounding_box_format=None; pass the boxes' format, "
            f"e.g. {name}(..., bounding_box_format='xyxy') (one of {list(box_ops.BOX_FORMATS)})")


def augment_bounding_boxes(layer, value: dict, params: dict, in_size, out_size,
                           apply: tf.Tensor | None = None) -> dict:
    """One layer's box step on a batch (see module docstring).

    Args:
        layer: the layer (its `bounding_box_format`, `min_visibility`, `augment_bounding_boxes`).
        value: `{"boxes": (B, N, 4) float32, "labels": (B, N)}` in the layer's format.
        params: the parameters the images were augmented with.
        in_size, out_size: `(height, width)` of the input and output images.
        apply: (B,) bool, the samples `p` augmented (None: all).
    """
    if getattr(layer, "boxes_unchanged", False):
        return value
    fmt = layer.bounding_box_format
    boxes = box_ops.to_xyxy(value["boxes"], fmt, *in_size)
    moved = layer.augment_bounding_boxes(boxes, params, *in_size)
    if apply is not None:
        moved = tf.where(apply[:, None, None], moved, boxes)
    boxes, labels = box_ops.filter_boxes(moved, value["labels"], *out_size, layer.min_visibility)
    return {"boxes": box_ops.from_xyxy(boxes, fmt, *out_size), "labels": labels}
