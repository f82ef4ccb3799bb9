"""Side-by-side throughput: ours vs a peer in the same process, on the same cached data.

`pipeline_throughput` times `batch -> map(cast + augment, AUTOTUNE) -> prefetch` over cached uint8
batches (how users feed `model.fit`); `model_step_throughput` times the layer inside a compiled
`tf.function` (how it runs inside a model on an accelerator). Both return images/second, median of
`passes` passes.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
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
    # KerasAug's closest layer: a constructor call in `keras_aug.layers.vision`, `size` bound to
    # the image side (run by benchmarks/kerasaug_worker.py in KerasAug's own environment)
    kerasaug: str | None = None
    # the layer's output depends on the value range: KerasAug then gets float32 [0, 1] images
    range_dependent: bool = False


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


class KerasAugPeer:
    """KerasAug's img/s from `kerasaug_worker.py` in its own interpreter, one pass per request.

    KerasAug imports as `keras_aug` too, so it runs in a second virtual environment; the worker
    stays up for the whole run (its layers trace once) and is idle while ours is timed, so the
    caller can alternate pass by pass and both see the same machine load.
    """

    def __init__(self, python: str):
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kerasaug_worker.py")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # ours must not shadow it
        self._proc = subprocess.Popen([python, worker], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, env=env)
        hello = self._answer()
        if hello is None:
            raise RuntimeError(f"the KerasAug worker under {python} exited "
                               f"(status {self._proc.wait()}); see its message above")
        self.version = hello["version"]
        self._files: dict[int, tuple[np.ndarray, str]] = {}  # id -> (array kept alive, .npy)
        self.errors: dict[str, str] = {}

    def throughput(self, case: Case, images: np.ndarray, batch: int, batches: int) -> float | None:
        """One pass of `pipeline_throughput` in the worker; None (error kept) if it fails."""
        if id(images) not in self._files:
            handle, path = tempfile.mkstemp(suffix=".npy", prefix="kerasaug_images_")
            os.close(handle)
            np.save(path, images)
            self._files[id(images)] = (images, path)
        request = {"images": self._files[id(images)][1], "spec": case.kerasaug, "batch": batch,
                   "batches": batches, "takes_labels": case.takes_labels,
                   "range_dependent": case.range_dependent}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = self._answer()
        if answer is None:
            raise RuntimeError("the KerasAug worker exited during a request")
        if answer["rate"] is None:
            self.errors[case.kerasaug] = answer["error"]
        return answer["rate"]

    def _answer(self) -> dict | None:
        """The worker's next JSON line (anything else a library prints is skipped)."""
        for line in self._proc.stdout:
            if line.startswith("{"):
                return json.loads(line)
        return None

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait()
        for _, path in self._files.values():
            os.remove(path)


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
    """a / b; two decimals below 10× so that a ratio near 1 can be read as above or below it."""
    if a is None or b is None:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"
