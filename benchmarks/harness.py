"""Side-by-side throughput: ours vs a peer in the same process, on the same cached data.

`pipeline_throughput` times `batch -> map(cast + augment, AUTOTUNE) -> prefetch` over cached uint8
batches (how users feed `model.fit`); `model_step_throughput` times the layer inside a compiled
`tf.function` (how it runs inside a model on an accelerator). Both return images/second, median of
`passes` passes.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


@dataclass
class Case:
    """One benchmark row: factories build a fresh augmentation callable (batch -> batch)."""

    name: str
    ours: Callable[[], Callable]
    keras: Callable[[], Callable] | None = None
    albumentations: Callable[[], Callable] | None = None  # per-image uint8 numpy transform
    takes_labels: bool = False  # mixing layers need (images, labels)
    goal: float | None = None  # required ratio ours/keras
    # fresh Keras layers to time (median): a layer that draws its ops with Python `random` at
    # trace time (Keras' AugMix) runs a different frozen chain, at a different speed, per trace
    keras_instances: int = 1
    # (ours, keras) img/s -> a line printed under the table
    note: Callable[[float | None, float | None], str] | None = None


def sample_images(size: int, n: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Real photos (scikit-image's bundled astronaut/coffee/chelsea) cropped and resized."""
    from PIL import Image
    from skimage import data as skdata

    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        s = int(rng.integers(min(h, w) // 2, min(h, w)))
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        crop = Image.fromarray(photo[y:y + s, x:x + s]).resize((size, size), Image.BILINEAR)
        out.append(np.asarray(crop)[..., :channels])
    return np.stack(out)


def pipeline_throughput(augment: Callable, images: np.ndarray, batch: int, batches: int,
                        passes: int = 3, takes_labels: bool = False) -> float:
    labels = np.arange(len(images)) % 10
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch, drop_remainder=True)
    ds = ds.cache().repeat()

    def fn(x, y):
        x = tf.cast(x, tf.float32)
        if takes_labels:
            return augment((x, tf.one_hot(y, 10)))
        return augment(x), y

    ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    it = iter(ds)
    for _ in range(3):  # warm-up: tracing and XLA compilation
        next(it)
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * batch / (time.perf_counter() - start))
    return float(np.median(rates))


def model_step_throughput(augment: Callable, images: np.ndarray, batch: int, steps: int,
                          passes: int = 3, jit_compile: bool = True) -> float | None:
    x = tf.constant(images[:batch], tf.float32)

    @tf.function(jit_compile=jit_compile)
    def step(x):
        return augment(x, training=True)

    try:
        step(x)
    except Exception:  # no XLA kernel for an op of the peer: reported as "fails"
        return None
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        for _ in range(steps):
            out = step(x)
        _ = np.asarray(out)
        rates.append(steps * batch / (time.perf_counter() - start))
    return float(np.median(rates))


def albumentations_throughput(transform: Callable, images: np.ndarray, batch: int, batches: int,
                              passes: int = 3) -> float:
    """albumentations per image on uint8, then collated into a float32 batch (a fair comparison)."""
    rates = []
    n = len(images)
    for _ in range(passes):
        start = time.perf_counter()
        for b in range(batches):
            idx = [(b * batch + i) % n for i in range(batch)]
            out = np.stack([transform(image=images[i])["image"] for i in idx]).astype(np.float32)
        rates.append(batches * batch / (time.perf_counter() - start))
    del out
    return float(np.median(rates))


def format_rate(rate: float | None, present: bool = True) -> str:
    """img/s; "–" when there is no such peer, "fails" when it exists but could not run."""
    if not present:
        return "–"
    return "fails" if rate is None else f"{rate:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "–"
    return f"{a / b:.1f}×"
