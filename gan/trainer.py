"""Train a `ConditionalGAN` with checkpoints every N steps and exact resume.

The training set is small by design, so it is held in memory and batch t is drawn statelessly
from `(seed, t)`; together with the model's per-step keys this makes a resumed run repeat what the
uninterrupted run would have done: same batches, same noise, same losses. A checkpoint is one
`.npz` (all weights, the EMA generator, both optimizers' slots, step counter, ADA state and the
loss history), written to a temporary name and renamed, so a run killed mid-write keeps the
previous checkpoint and loses at most one checkpoint interval.

Layout of `out_dir`:
    gan_config.json             the GANConfig (rebuilds the networks)
    checkpoints/ckpt-000500.npz the last `keep_checkpoints` checkpoints
    generator.weights.h5        EMA generator weights at the latest checkpoint (for sampling)
    samples/step-000500.png     sample grids, one row per seed, one column per class
"""
from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from gan.models import ConditionalGAN, GANConfig
from keras_aug.core.validation import check_integer
from keras_aug.data import dataset_to_numpy

CONFIG_FILE = "gan_config.json"
GENERATOR_FILE = "generator.weights.h5"
CHECKPOINT_DIR = "checkpoints"
_CKPT_RE = re.compile(r"ckpt-(\d+)\.npz$")


@dataclass
class TrainResult:
    gan: ConditionalGAN
    history: dict  # per-step lists: "step", "d_loss", "g_loss", "r_t", "p", ...
    out_dir: str


def dataset_arrays(data) -> tuple[np.ndarray, np.ndarray]:
    """`(images, labels)` numpy arrays from an unbatched tf.data of `(image, label)` or a pair."""
    if isinstance(data, tf.data.Dataset):
        try:
            return dataset_to_numpy(data)
        except ValueError:
            raise ValueError("data is empty: the GAN needs at least one image per class.") from None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = np.asarray(data[0]), np.asarray(data[1]).astype(np.int64).reshape(-1)
        if len(images) != len(labels) or len(images) == 0:
            raise ValueError(
                f"data must hold as many images as labels (> 0), got {len(images)} images and "
                f"{len(labels)} labels"
            )
        return images, labels
    raise TypeError(
        f"data must be an unbatched tf.data.Dataset of (image, label) or an (images, labels) pair, "
        f"got {type(data).__name__}"
    )


def config_for_data(images: np.ndarray, labels: np.ndarray, num_classes: int | None = None,
                    value_range=None, **overrides) -> GANConfig:
    """A GANConfig matching the data: shape, classes, value range (uint8 -> (0, 255))."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(
            f"data has a single class (label {int(present[0])}); a class-conditional GAN needs "
            "images of at least 2 classes."
        )
    if labels.min() < 0:
        raise ValueError(f"labels must be integers >= 0, got {int(labels.min())}")
    num_classes = int(num_classes or labels.max() + 1)
    if labels.max() >= num_classes:
        raise ValueError(f"labels must be < num_classes={num_classes}, got {int(labels.max())}")
    if value_range is None:
        if images.dtype == np.uint8:
            value_range = (0.0, 255.0)
        else:
            raise ValueError(
                f"value_range is required for {images.dtype} images (e.g. (0, 1) or (0, 255))"
            )
    extra = dict(overrides.pop("extra", {}))
    extra.setdefault("image_dtype", str(images.dtype))
    return GANConfig(image_shape=images.shape[1:], num_classes=num_classes,
                     value_range=tuple(value_range), extra=extra, **overrides)


def batch_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                  start: int, stop: int) -> tf.data.Dataset:
    """Batches for steps start..stop-1; batch t is drawn with replacement from key (seed, t)."""
    if images.ndim == 3:
        images = images[..., None]
    images_t = tf.constant(images)
    labels_t = tf.constant(labels, tf.int64)
    n = len(images)

    def batch(step):
        index = tf.random.stateless_uniform(
            [batch_size], tf.stack([tf.cast(seed, tf.int64), step]), 0, n, dtype=tf.int64
        )
        return tf.gather(images_t, index), tf.gather(labels_t, index)

    return tf.data.Dataset.range(start, stop).map(batch).prefetch(2)


def train_gan(
    data,
    out_dir: str,
    *,
    steps: int = 2000,
    batch_size: int = 32,
    config: GANConfig | None = None,
    checkpoint_every: int = 250,
    sample_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool = False,
    verbose: bool = True,
    callbacks: list | None = None,
    value_range=None,
    **config_overrides,
) -> TrainResult:
    """Train a class-conditional GAN on `data` and write checkpoints to `out_dir`.

    Args:
        data: unbatched tf.data of `(image, label)` (e.g. `load_dataset("digits").train`) or an
            `(images, labels)` pair of arrays. Held in memory.
        out_dir: run folder (see the module docstring for its layout).
        steps: total number of steps of the run (a resumed run stops at the same total).
        batch_size: images per step.
        config: a GANConfig; default one derived from the data with `config_overrides`
            (e.g. `policy=()`, `ada_target=0.6`, `seed=1`).
        checkpoint_every: steps between checkpoints (the last step is always saved).
        sample_every: steps between sample grids (default `checkpoint_every`; 0 disables).
        keep_checkpoints: how many checkpoints to keep.
        resume: continue from the latest checkpoint in `out_dir` (same weights, optimizer slots,
            step counter, augmentation probability, history). Without it an `out_dir` that
            already holds checkpoints is an error, so a run is never overwritten by accident.
        verbose: a tqdm progress bar with the losses.
        callbacks: extra Keras callbacks for `fit`.
        value_range: the images' range; required for float images (uint8 -> (0, 255)).

    Example:
        >>> import tempfile
        >>> from keras_aug.data import few_shot, load_dataset
        >>> from gan.sampler import SampleGenerator
        >>> run = tempfile.mkdtemp()                 # e.g. "runs/gan"; real runs use ~1200 steps
        >>> result = train_gan(few_shot(load_dataset("digits").train, 2), run, steps=4,
        ...                    checkpoint_every=2, verbose=False)
        >>> images, labels = SampleGenerator.load(run).sample(10, seed=0)
        >>> result = train_gan(few_shot(load_dataset("digits").train, 2), run, steps=6,
        ...                    checkpoint_every=2, verbose=False, resume=True)   # continues at 4
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        check_integer(name, value)
    images, labels = dataset_arrays(data)
    if images.ndim == 3:
        images = images[..., None]
    latest = latest_checkpoint(out_dir)
    if latest is not None and not resume:
        raise ValueError(
            f"out_dir {out_dir!r} already holds checkpoints ({os.path.basename(latest)}); pass "
            "resume=True (CLI: --resume) to continue that run, or choose another out_dir."
        )
    if config is None:
        if resume and latest is not None and not config_overrides and value_range is None:
            config = load_config(out_dir)
        else:
            config = config_for_data(images, labels, value_range=value_range, **config_overrides)
    elif config_overrides:
        raise TypeError(f"pass either config= or GANConfig fields, not both: {sorted(config_overrides)}")
    _check_data_matches(config, images, labels)
    if resume and latest is not None:
        saved = load_config(out_dir)
        if saved.to_dict() != config.to_dict():
            diff = {k: (v, saved.to_dict()[k]) for k, v in config.to_dict().items() if saved.to_dict()[k] != v}
            raise ValueError(f"resume=True but the config differs from {out_dir!r}: {diff} (new, saved)")

    gan = ConditionalGAN(config)
    gan.compile()
    history: dict = {}
    if resume and latest is not None:
        history = restore_checkpoint(gan, latest)
    os.makedirs(os.path.join(out_dir, CHECKPOINT_DIR), exist_ok=True)
    with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=1)

    start = int(gan.step_counter.numpy())
    if start >= steps:
        return TrainResult(gan, history, out_dir)
    sample_every = checkpoint_every if sample_every is None else sample_every
    recorder = _History(history)
    cbs = [recorder, _Checkpointer(out_dir, checkpoint_every, steps, keep_checkpoints, recorder)]
    if sample_every:
        cbs.append(_SampleGrid(out_dir, sample_every, steps))
    if verbose:
        cbs.append(_ProgressBar(start, steps))
    cbs.extend(callbacks or [])
    batches = batch_dataset(images, labels, batch_size, config.seed, start, steps)
    gan.fit(batches, epochs=1, steps_per_epoch=steps - start, verbose=0, callbacks=cbs)
    return TrainResult(gan, recorder.history, out_dir)


def _check_data_matches(config: GANConfig, images: np.ndarray, labels: np.ndarray) -> None:
    if tuple(images.shape[1:]) != tuple(config.image_shape):
        raise ValueError(
            f"images have shape {tuple(images.shape[1:])} but the GAN config expects "
            f"{tuple(config.image_shape)}"
        )
    if len(np.unique(labels)) < 2:
        raise ValueError(
            f"data has a single class (label {int(labels[0])}); a class-conditional GAN needs "
            "images of at least 2 classes."
        )
    if labels.min() < 0 or labels.max() >= config.num_classes:
        raise ValueError(
            f"labels must be in [0, {config.num_classes}), got min {int(labels.min())} "
            f"max {int(labels.max())}"
        )


# checkpoints --------------------------------------------------------------------------------
def latest_checkpoint(out_dir: str) -> str | None:
    """Path of the newest `ckpt-*.npz` in `out_dir/checkpoints`, or None."""
    paths = glob.glob(os.path.join(out_dir, CHECKPOINT_DIR, "ckpt-*.npz"))
    if not paths:
        return None
    return max(paths, key=lambda p: int(_CKPT_RE.search(p).group(1)))


def load_config(out_dir: str) -> GANConfig:
    path = os.path.join(out_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {out_dir!r} is not a kaug GAN run folder")
    with open(path) as f:
        return GANConfig.from_dict(json.load(f))


def save_checkpoint(gan: ConditionalGAN, out_dir: str, history: dict, keep: int = 2) -> str:
    """Write all training state to `checkpoints/ckpt-STEP.npz` (atomically) and the EMA
    generator to `generator.weights.h5`; keep the newest `keep` checkpoints."""
    step = int(gan.step_counter.numpy())
    arrays = {
        f"{group}/{i}": np.asarray(v.numpy())
        for group, variables in gan.state_variables().items()
        for i, v in enumerate(variables)
    }
    arrays["history"] = np.asarray(json.dumps(history))
    folder = os.path.join(out_dir, CHECKPOINT_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"ckpt-{step:06d}.npz")
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    weights_tmp = os.path.join(out_dir, "tmp-" + GENERATOR_FILE)
    gan.ema_generator.save_weights(weights_tmp)
    os.replace(weights_tmp, os.path.join(out_dir, GENERATOR_FILE))
    old = sorted(glob.glob(os.path.join(folder, "ckpt-*.npz")),
                 key=lambda p: int(_CKPT_RE.search(p).group(1)))
    for stale in old[:-keep] if keep > 0 else []:
        os.remove(stale)
    return path


def restore_checkpoint(gan: ConditionalGAN, path: str) -> dict:
    """Load a checkpoint into a compiled GAN built from the same config; returns the history."""
    with np.load(path) as data:
        for group, variables in gan.state_variables().items():
            stored = sum(1 for k in data.files if k.startswith(group + "/"))
            if stored != len(variables):
                raise ValueError(
                    f"checkpoint {path} has {stored} {group} variables, the model has "
                    f"{len(variables)}: it was written by a different architecture"
                )
            for i, variable in enumerate(variables):
                variable.assign(data[f"{group}/{i}"])
        return json.loads(str(data["history"]))


# callbacks ----------------------------------------------------------------------------------
class _History(keras.callbacks.Callback):
    def __init__(self, history: dict):
        super().__init__()
        self.history = {k: list(v) for k, v in history.items()}

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step_counter.numpy())
        self.history.setdefault("step", []).append(step)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))


class _Checkpointer(keras.callbacks.Callback):
    def __init__(self, out_dir, every, total, keep, recorder):
        super().__init__()
        self.out_dir, self.every, self.total, self.keep, self.recorder = out_dir, every, total, keep, recorder

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step_counter.numpy())
        if step % self.every == 0 or step == self.total:
            save_checkpoint(self.model, self.out_dir, self.recorder.history, self.keep)


class _SampleGrid(keras.callbacks.Callback):
    def __init__(self, out_dir, every, total):
        super().__init__()
        self.out_dir, self.every, self.total = out_dir, every, total

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.step_counter.numpy())
        if step % self.every == 0 or step == self.total:
            save_sample_grid(self.model, os.path.join(self.out_dir, "samples", f"step-{step:06d}.png"),
                             title=f"EMA generator, step {step}")


def save_sample_grid(gan: ConditionalGAN, path: str, rows: int = 4, title: str | None = None) -> str:
    """One column per class (up to 10), `rows` fixed noise vectors: comparable across steps."""
    from keras_aug.viz import save_image_grid

    c = gan.config
    classes = min(c.num_classes, 10)
    labels = np.tile(np.arange(classes), rows)
    noise = tf.random.stateless_normal([len(labels), c.latent_dim], [c.seed, 4242])
    images = gan.generate(noise, labels).numpy()
    titles = [str(k) for k in labels[:classes]] + [""] * (len(labels) - classes)
    return save_image_grid(images, path, titles=titles, ncols=classes, value_range=c.value_range,
                           suptitle=title)


class _ProgressBar(keras.callbacks.Callback):
    def __init__(self, start, total):
        super().__init__()
        self.start, self.total = start, total

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, initial=self.start, desc="kaug gan", unit="step")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        self.bar.set_postfix_str(
            " ".join(f"{k}={float(logs[k]):.3f}" for k in ("d_loss", "g_loss", "r_t", "p") if k in logs)
        )
        self.bar.update()

    def on_train_end(self, logs=None):
        self.bar.close()
