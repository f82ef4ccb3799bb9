"""`fine_tune`: run a plan's phases, recompiling between them, keeping the best weights.

With `cache_frozen_features=True`, the frozen front of the network (resize, preprocess and every
backbone block below the lowest trainable one) runs once over the data, and each phase trains only
the part above it on the cached features. Because the backbone runs with `training=False` (no
dropout, BatchNorm in inference mode), the front is a fixed function and this is exact, not an
approximation, as long as `train_ds` has no random augmentation. It makes a frozen-backbone phase
cost about one forward pass in total instead of one per epoch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from finetune.plan import FinetunePlan, Phase, compile_for_phase
from finetune.registry import block_output
from finetune.similarity import adapt_batchnorm


@dataclass
class FinetuneResult:
    """What `fine_tune` returns: the trained model (best weights restored) and its history.

    Attributes:
        model: the trained classifier.
        history: Keras `History.history` over all phases, plus `"phase"` (the name per epoch).
        best_value, best_epoch: the best `monitor` value and its epoch (0-based, all phases).
        monitor: the metric that chose the best weights.
        checkpoint_path: where the best weights were written, if asked.
        seconds, phase_seconds: training time in total and per phase.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> from finetune import plan
        >>> train = few_shot(load_dataset("digits").train, 2)
        >>> p = plan("DigitsCNN04", 20, 10, 0.9, input_shape=(32, 32, 3), head_epochs=2)
        >>> result = fine_tune(p, train, verbose=0)
        >>> result.history["phase"], result.monitor
        (['head', 'head'], 'loss')
    """

    model: keras.Model
    history: dict[str, list]  # Keras History.history keys, plus "phase" (name per epoch)
    best_value: float
    best_epoch: int  # 0-based over all phases
    monitor: str
    checkpoint_path: str | None
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)


def fine_tune(
    model_or_plan: keras.Model | FinetunePlan,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None = None,
    *,
    batch_size: int = 32,
    checkpoint_path: str | None = None,
    cache_frozen_features: bool = False,
    monitor: str | None = None,
    restore_best: bool = True,
    seed: int | None = None,
    verbose: int = 1,
    callbacks: list | None = None,
    jit_compile: bool | str = "auto",
) -> FinetuneResult:
    """Train a plan's phases in order (recompiling between them) and restore the best weights.

    Args:
        model_or_plan: a `FinetunePlan` (its model is built for `train_ds`'s image shape) or a
            model from `plan.build_model()`.
        train_ds, val_ds: tf.data of (image 0..255, integer label), batched or not.
        batch_size: used when the datasets are not batched.
        checkpoint_path: where to write the best weights (`.weights.h5`) whenever `monitor`
            improves; without it the best weights are kept in memory.
        cache_frozen_features: compute the frozen front once (see the module doc). Only for
            datasets without random augmentation. A phase that trains the first block has no
            frozen front and runs on the images.
        monitor: "val_accuracy" with `val_ds`, else the training "loss".
        restore_best: end with the best weights by `monitor` (over all phases); False keeps the
            final weights (as the Keras transfer-learning guide does). Without `val_ds` the
            monitor is the training loss, which cannot tell whether a fine-tuning phase
            generalizes better than the head phase before it (its dropout/L2 loss often stays
            above the head phase's best, so restoring would discard the fine-tuning).
            `checkpoint_path` holds the best weights either way.
        seed: shuffling seed (and Keras' global seed for the head's initialisation).
        verbose: 0 silent, 1 a line per phase plus Keras' progress bar, 2 a line per epoch.
        callbacks: extra Keras callbacks for every phase.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> from finetune import plan
        >>> data = load_dataset("digits")
        >>> p = plan("DigitsCNN04", 20, 10, 0.9, input_shape=(32, 32, 3), head_epochs=2)
        >>> result = fine_tune(p, few_shot(data.train, 2), cache_frozen_features=True, verbose=0)
        >>> loss, accuracy = result.model.evaluate(data.test.batch(256), verbose=0)
    """
    if seed is not None:
        keras.utils.set_random_seed(seed)
    # A dataset the caller batched keeps its order and batches (cached runs then match exactly).
    keep_order = isinstance(train_ds, tf.data.Dataset) and _rank(train_ds) == 4
    train_ds = _as_batched(train_ds, "train_ds", batch_size, shuffle_seed=seed)
    val_ds = _as_batched(val_ds, "val_ds", batch_size) if val_ds is not None else None
    if isinstance(model_or_plan, FinetunePlan):
        image_shape = tuple(train_ds.element_spec[0].shape[1:])
        model = model_or_plan.build_model(image_shape)
    elif isinstance(model_or_plan, keras.Model) and hasattr(model_or_plan, "finetune_plan"):
        model = model_or_plan
    else:
        raise TypeError(
            "model_or_plan must be a FinetunePlan or a model built by plan.build_model(), got "
            f"{type(model_or_plan).__name__}"
        )
    if checkpoint_path is not None and not str(checkpoint_path).endswith(".weights.h5"):
        raise ValueError(f"checkpoint_path must end with '.weights.h5', got {checkpoint_path!r}")
    p: FinetunePlan = model.finetune_plan
    monitor = monitor or ("val_accuracy" if val_ds is not None else "loss")
    if p.bn_policy == "adapt":
        adapt_batchnorm(model, train_ds)
    cache: dict[int, tuple] = {}
    _adapt_head_norm(model, train_ds, cache if cache_frozen_features else None)
    best = _BestWeights(model, monitor, checkpoint_path)
    history: dict[str, list] = {}
    start = time.time()
    phase_seconds = {}
    for number, phase in enumerate(p.phases, 1):
        t0 = time.time()
        if verbose:
            trains = ", ".join(f"block{b + 1}" for b in phase.trainable_blocks) or "head only"
            print(f"[finetune] phase {number}/{len(p.phases)} '{phase.name}': {phase.epochs} epochs, "
                  f"trains {trains}", flush=True)
        compile_for_phase(model, phase, jit_compile)
        fit_kwargs = dict(epochs=phase.epochs, verbose=verbose,
                          callbacks=[best, *(callbacks or [])])
        if cache_frozen_features and 0 not in phase.trainable_blocks:
            runner, train_data, val_data = _cached_phase(model, phase, train_ds, val_ds, cache,
                                                         batch_size, seed, jit_compile, keep_order)
            h = runner.fit(train_data, validation_data=val_data, **fit_kwargs)
        else:
            h = model.fit(train_ds, validation_data=val_ds, **fit_kwargs)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)
        history.setdefault("phase", []).extend([phase.name] * len(h.history.get("loss", [])))
        phase_seconds[phase.name] = time.time() - t0
    if restore_best:
        best.restore()
    else:
        best.finish()
    return FinetuneResult(model, history, best.best, best.best_epoch, monitor, checkpoint_path,
                          time.time() - start, phase_seconds)


class _BestWeights(keras.callbacks.Callback):
    """Keeps the full model's best weights across phases (the fitted model may be a cached
    sub-model sharing its layers)."""

    def __init__(self, target: keras.Model, monitor: str, path: str | None):
        super().__init__()
        self.target, self.monitor, self.path = target, monitor, path
        self.best, self.best_epoch, self.epoch, self.weights = -np.inf, -1, -1, None
        self.mode = "min" if "loss" in monitor else "max"

    def on_epoch_end(self, epoch, logs=None):
        self.epoch += 1
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"monitor={self.monitor!r} is not among the logged metrics "
                             f"{sorted(logs or {})}")
        score = -value if self.mode == "min" else value
        if score > self.best:
            self.best, self.best_epoch = score, self.epoch
            self.weights = self.target.get_weights()
            if self.path:
                self.target.save_weights(self.path)

    def restore(self):
        if self.weights is not None:
            self.target.set_weights(self.weights)
        self.finish()

    def finish(self):
        """Report `best` in the monitor's own sign; drop the in-memory copy."""
        self.weights = None
        if self.mode == "min":
            self.best = -self.best


def _as_batched(ds, name, batch_size, shuffle_seed=None) -> tf.data.Dataset:
    if not isinstance(ds, tf.data.Dataset):
        raise TypeError(f"{name} must be a tf.data.Dataset of (image, label), got {type(ds).__name__}")
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"{name} must yield (image, label) pairs, got element_spec {spec}")
    rank = spec[0].shape.rank
    if rank == 3:
        if shuffle_seed is not None or name == "train_ds":
            n = int(ds.cardinality())
            ds = ds.shuffle(n if n > 0 else 1024, seed=shuffle_seed)
        ds = ds.batch(batch_size)
    elif rank != 4:
        raise ValueError(f"{name} images must be (H, W, C) or batched (B, H, W, C), got {spec[0].shape}")
    return ds.prefetch(tf.data.AUTOTUNE)


def _adapt_head_norm(model, train_ds, cache) -> None:
    """Set the head's Normalization to the training data's pooled-feature mean/variance, once."""
    if getattr(model, "_kaug_head_norm_adapted", False):
        return
    p: FinetunePlan = model.finetune_plan
    if cache is not None:
        if p.cut_block not in cache:
            front = _front(model, model.kaug_backbone, p.cut_block, p)
            cache[p.cut_block] = (_predict(front, train_ds), None)
        features = cache[p.cut_block][0][0]
    else:
        front = _front(model, model.kaug_backbone, p.cut_block, p)
        features = _predict(front, train_ds)[0]
    model.head.get_layer("head_norm").set_statistics(features.mean(axis=(1, 2)))
    model._kaug_head_norm_adapted = True


def _rank(ds):
    spec = ds.element_spec
    return spec[0].shape.rank if isinstance(spec, tuple) and spec else None


def _cached_phase(model, phase: Phase, train_ds, val_ds, cache, batch_size, seed, jit_compile,
                  keep_order=False):
    """A sub-model over the trainable part, compiled for `phase`, and its cached inputs."""
    p: FinetunePlan = model.finetune_plan
    backbone = model.kaug_backbone
    split = min(phase.trainable_blocks) - 1 if phase.trainable_blocks else p.cut_block
    if split not in cache or (cache[split][1] is None and val_ds is not None):
        front = _front(model, backbone, split, p)
        train = cache[split][0] if split in cache else _predict(front, train_ds)
        val = _predict(front, val_ds) if val_ds is not None else None
        cache[split] = (train, val)
    (x_train, y_train, first_batch), val = cache[split]
    if split == p.cut_block:
        runner = model.head
    else:
        trunk = model.trunk
        inner = block_output(trunk, backbone.blocks[split].end)
        upper = keras.Model(inner, trunk.output)
        inputs = keras.Input(x_train.shape[1:])
        runner = keras.Model(inputs, model.head(upper(inputs, training=False)))
    compile_for_phase(model, phase, jit_compile, target=runner)
    train_data = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    if keep_order:
        train_data = train_data.batch(first_batch)
    else:
        train_data = train_data.shuffle(len(x_train), seed=seed).batch(batch_size)
    train_data = train_data.prefetch(2)
    val_data = (tf.data.Dataset.from_tensor_slices(val[:2]).batch(256)
                if val is not None else None)
    return runner, train_data, val_data


def _front(model, backbone, split, p):
    trunk = model.trunk
    preprocess_out = model.get_layer(backbone.preprocess_layer().name).output
    pre = keras.Model(model.input, preprocess_out)
    if split == p.cut_block:
        lower = trunk
    else:
        lower = keras.Model(trunk.input, block_output(trunk, backbone.blocks[split].end))

    @tf.function
    def front(images):
        return lower(pre(images, training=False), training=False)

    return front


def _predict(front, ds):
    xs, ys = [], []
    for images, labels in ds:
        xs.append(front(images).numpy())
        ys.append(labels.numpy())
    return np.concatenate(xs), np.concatenate(ys), len(xs[0])
