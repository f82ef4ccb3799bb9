"""One adversarial-training run end to end (load, train, time, evaluate), shared by
`kaug adversarial` and `examples/adversarial_table.py`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

from keras_aug.adversarial.attacks import check_eps
from keras_aug.adversarial.evaluation import evaluate_robustness
from keras_aug.adversarial.training import MODES, AdversarialTraining
from keras_aug.core.validation import check_choice, check_integer

EXPERIMENT_MODES = ("standard",) + MODES


@dataclass
class ExperimentConfig:
    """What to train and how. Budgets are in 0..255 pixel units (the datasets' value_range)."""

    dataset: str = "digits"
    mode: str = "fast_fgsm"  # "standard" (no attack) or an AdversarialTraining mode
    eps: float = 25.5  # 0.1 of the range
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 2e-3
    steps: int | None = None  # attack steps in training (mode default when None)
    beta: float = 6.0
    ratio: float = 0.0
    eval_attacks: tuple[str, ...] = ("fgsm", "pgd-20")
    eval_eps: tuple[float, ...] = ()  # default (eps,)
    seed: int = 0
    # Measured on 2 CPU cores: XLA makes the attack steps 2-4x slower (its CPU convolutions'
    # input gradients), so attacks and training run as plain graphs unless asked.
    jit_compile: bool = False
    verbose: int | str = 0
    callbacks: list = field(default_factory=list)

    def __post_init__(self):
        check_choice("mode", self.mode, EXPERIMENT_MODES)
        check_eps(self.eps)
        check_integer("epochs", self.epochs)
        check_integer("batch_size", self.batch_size)


def robust_cnn(image_shape, num_classes: int, seed: int = 0, width: int = 32) -> keras.Model:
    """A small CNN for 0..255 images, returning logits.

    It averages 2x2 pixels first: the digits are 8x8 scans upsampled to 32x32, and a model that
    reads them at 16x16 is both 4x cheaper and (measured) far easier to make robust than one
    that reacts to 32x32 pixel-level patterns the data never contains. The attack still sees
    (and is differentiated through) the full 32x32 input.
    """
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(4 * width, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ],
        name="robust_cnn",
    )


def load_arrays(dataset: str):
    """(x_train, y_train, x_test, y_test, num_classes) as float32 0..255 / int arrays."""
    from keras_aug.data import dataset_to_numpy, load_dataset

    data = load_dataset(dataset)
    if data.test is None:
        raise ValueError(f"dataset {dataset!r} has no test split to measure robustness on")
    (x_train, y_train), (x_test, y_test) = dataset_to_numpy(data.train), dataset_to_numpy(data.test)
    return (x_train.astype(np.float32), y_train, x_test.astype(np.float32), y_test,
            data.num_classes)


class EpochTimer(keras.callbacks.Callback):
    """Wall and process-CPU seconds of every epoch (CPU time is steadier on a shared machine)."""

    def on_train_begin(self, logs=None):
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)

    def median(self, which: str) -> float:
        values = getattr(self, which)
        return float(np.median(values[1:] if len(values) > 1 else values))  # epoch 1 traces


def run_experiment(config: ExperimentConfig, arrays=None) -> dict:
    """Train `robust_cnn` as `config` says and evaluate it; returns a dict with the plain
    `model`, the `trainer` that was fitted, `history`, `rows` (evaluate_robustness) and the
    median `epoch_wall_s` / `epoch_cpu_s` (first epoch excluded: it traces the graph)."""
    import tensorflow as tf

    x_train, y_train, x_test, y_test, num_classes = arrays or load_arrays(config.dataset)
    model = robust_cnn(x_train.shape[1:], num_classes, seed=config.seed)
    steps_per_epoch = -(-len(x_train) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                      config.epochs * steps_per_epoch)
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=config.jit_compile)
    if config.mode == "standard":
        trainer = model
    else:
        trainer = AdversarialTraining(model, mode=config.mode, eps=config.eps, steps=config.steps,
                                      beta=config.beta, ratio=config.ratio, from_logits=True,
                                      seed=config.seed)
    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).cache()
             .shuffle(len(x_train), seed=config.seed).batch(config.batch_size).prefetch(2))
    timer = EpochTimer()
    history = trainer.fit(train, epochs=config.epochs, verbose=config.verbose,
                          callbacks=[timer, *config.callbacks])
    rows = evaluate_robustness(model, (x_test, y_test), config.eval_attacks,
                               eps=list(config.eval_eps or (config.eps,)), from_logits=True,
                               seed=config.seed)
    guard = getattr(trainer, "overfit_guard", None)
    return {
        "model": model,
        "trainer": trainer,
        "history": history.history,
        "rows": rows,
        "epoch_wall_s": timer.median("wall"),
        "epoch_cpu_s": timer.median("cpu"),
        "overfit_triggered": bool(guard and guard.triggered),
        "test": (x_test, y_test),
    }


__all__ = ["ExperimentConfig", "robust_cnn", "run_experiment", "load_arrays", "EpochTimer"]
