"""The learning-curve picture with the regime of each epoch shaded."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from keras_aug.diagnose.regimes import (
    GOOD_FIT,
    NOT_CONVERGED,
    OVERFITTING,
    UNDERFITTING,
    UNDETERMINED,
    Diagnosis,
    diagnose,
)

REGIME_COLORS = {UNDERFITTING: "#4c9be8", NOT_CONVERGED: "#f2d35e", GOOD_FIT: "#6cc46c",
                 OVERFITTING: "#e8634c", UNDETERMINED: "#cccccc"}


def plot_diagnosis(history: Mapping[str, Sequence[float]], path: str,
                   diagnosis: Diagnosis | None = None, title: str | None = None,
                   **diagnose_kwargs) -> str:
    """Write loss (and metric) curves with each epoch shaded by its regime; returns the path.

    Args:
        history: per-epoch lists (`History.history`).
        path: the PNG to write (folders are created).
        diagnosis: a `Diagnosis` of `history`; computed with `diagnose_kwargs` when `None`.
        title: figure title (default: the final regime).

    Example:
        >>> plot_diagnosis(model.fit(...).history, "runs/curves.png", chance=0.1)
    """
    from keras_aug.viz import _pyplot

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {path!r}")
    diagnosis = diagnosis or diagnose(history, **diagnose_kwargs)
    metric = next((k[4:] for k in history if k.startswith("val_") and k != "val_loss"
                   and k[4:] in history), None)
    panels = [("loss", "val_loss")] + ([(metric, f"val_{metric}")] if metric else [])
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    epochs = range(1, len(diagnosis.epoch_regimes) + 1)
    for ax, (train_key, val_key) in zip(axes[0], panels):
        for epoch, regime in zip(epochs, diagnosis.epoch_regimes):
            ax.axvspan(epoch - 0.5, epoch + 0.5, color=REGIME_COLORS[regime], alpha=0.25, lw=0)
        for key, style in ((train_key, "--"), (val_key, "-")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, color="black",
                        label=key)
        if "augmentation_strength" in history:
            twin = ax.twinx()
            twin.plot(range(1, len(history["augmentation_strength"]) + 1),
                      history["augmentation_strength"], ":", color="purple", label="strength")
            twin.set_ylim(-0.02, 1.02)
            twin.set_ylabel("augmentation strength", color="purple")
        ax.set_xlabel("epoch")
        ax.set_ylabel(train_key)
        ax.legend(fontsize=7, loc="best")
    seen = [r for r in REGIME_COLORS if r in diagnosis.epoch_regimes]
    handles = [plt.Rectangle((0, 0), 1, 1, color=REGIME_COLORS[r], alpha=0.4) for r in seen]
    fig.legend(handles, seen, loc="lower center", ncol=len(seen), fontsize=8)
    fig.suptitle(title or f"regime: {diagnosis.regime}", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)
