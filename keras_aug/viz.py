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
