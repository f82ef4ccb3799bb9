"""PNG pictures: preview grids of augmented images and learning curves."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(
    images,
    path: str,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    value_range=(0, 255),
    suptitle: str | None = None,
) -> str:
    """Write images (N, H, W, C) as a PNG grid; returns the path."""
    images = np.asarray(images, dtype=np.float32)
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    plt = _pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.6 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            image = images[i]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image[..., :3], cmap="gray",
                      vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_learning_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str,
    metrics: Sequence[str] = ("accuracy", "val_accuracy"),
    title: str | None = None,
) -> str:
    """Plot one line per (run, metric) from Keras `History.history` dicts; returns the path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, history) in enumerate(histories.items()):
        for metric, style in zip(metrics, ("--", "-")):
            if metric in history:
                ax.plot(history[metric], style, color=colors[i % len(colors)],
                        label=f"{name} ({metric})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("/".join(metrics))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_boxes(images, boxes, labels, bounding_box_format: str = "xyxy",
               value_range=(0, 255), width: int = 2) -> np.ndarray:
    """Draw box outlines (one colour per class id) into copies of images (N, H, W, C).

    Args:
        images: (N, H, W, 3) in `value_range`.
        boxes: (N, M, 4) in `bounding_box_format`; labels: (N, M), boxes with label -1 are skipped.
        width: outline thickness in pixels.

    Example:
        >>> out = layer({"images": x, "bounding_boxes": bb})
        >>> pictures = draw_boxes(out["images"], **out["bounding_boxes"])
    """
    from keras_aug.ops.boxes import convert_format

    images = np.array(images, dtype=np.float32)
    n, h, w = images.shape[:3]
    xyxy = np.asarray(convert_format(boxes, bounding_box_format, "xyxy", height=h, width=w))
    labels = np.asarray(labels)
    palette = np.array([[255, 64, 64], [64, 255, 64], [64, 160, 255], [255, 220, 0],
                        [255, 64, 255], [0, 255, 255]], np.float32)
    low, high = value_range
    for i in range(n):
        for box, label in zip(xyxy[i], labels[i]):
            if label < 0:
                continue
            colour = low + palette[int(label) % len(palette)] / 255.0 * (high - low)
            x1, y1 = (int(np.clip(np.floor(v), 0, s - 1)) for v, s in zip(box[:2], (w, h)))
            x2, y2 = (int(np.clip(np.ceil(v) - 1, 0, s - 1)) for v, s in zip(box[2:], (w, h)))
            for t in range(width):  # outline inside the box's pixels
                images[i, min(y1 + t, y2), x1:x2 + 1] = colour
                images[i, max(y2 - t, y1), x1:x2 + 1] = colour
                images[i, y1:y2 + 1, min(x1 + t, x2)] = colour
                images[i, y1:y2 + 1, max(x2 - t, x1)] = colour
    return images
