"""Adversarial training as augmentation: a `keras.Model` wrapper whose `train_step` attacks the
current weights and trains on what it finds.

    adv = AdversarialTraining(model, mode="fast_fgsm", eps=0.1 * 255, from_logits=True)
    adv.fit(train_ds, epochs=10, validation_data=test_ds)   # then model / adv.export(...) serve

Modes: `"pgd"` (Madry et al. 2018: k-step PGD from a random start), `"fast_fgsm"` (Wong et al.
2020, "Fast is better than free": one FGSM step of α = 1.25ε from a uniform random start, with a
guard against catastrophic overfitting) and `"trades"` (Zhang et al. 2019: CE(clean) + β·KL(clean
‖ adversarial), the adversary climbing the KL term). The wrapper trains the wrapped model's own
weights, serves the plain model (`call`, `predict`, `evaluate`, `export` never attack), and
validation/`evaluate` report clean accuracy. Attacks run the model with `training=False` (dropout
off, BatchNorm statistics neither used from the batch nor updated), the update step with
`training=True`.
"""
from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_aug.adversarial.attacks import (
    NORMS,
    check_data_range,
    check_eps,
    check_step_size,
    check_steps,
    default_step_size,
    kl_divergence,
    pgd,
    probabilities,
)
from keras_aug.adversarial.outputs import resolve_from_logits
from keras_aug.core.labels import accuracy
from keras_aug.core.validation import check_choice, check_number, check_value_range

MODES = ("pgd", "fast_fgsm", "trades")
_plain = tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow here
DEFAULT_STEPS = {"pgd": 7, "fast_fgsm": 1, "trades": 10}


@keras.saving.register_keras_serializable(package="keras_aug")
class AdversarialTraining(keras.Model):
    """Wrap a classifier so that `fit` trains it on adversarial examples of its current weights.

    Args:
        model: a Keras classifier returning logits or probabilities (B, K). If it is already
            compiled, the wrapper compiles itself with the same optimizer, loss and metrics
            (fresh copies); otherwise call `compile` on the wrapper.
        mode: `"pgd"`, `"fast_fgsm"` or `"trades"`.
        eps: perturbation budget in `value_range` units (0.1 * 255 = 25.5 for 0..255 images).
        steps: attack steps per batch; default 7 (pgd), 1 (fast_fgsm, the only value), 10 (trades).
        step_size: per-step size in value_range units; default 1.25·ε for fast_fgsm (Wong et al.)
            and 2.5·ε/steps otherwise (Madry et al.).
        ratio: fraction of every batch left clean (0 <= ratio < 1; default 0, all adversarial).
            The first round(ratio·B) samples of a batch stay clean and only the rest are attacked,
            so a shuffled pipeline mixes both and a higher ratio also costs less. pgd/fast_fgsm only.
        beta: TRADES' weight of the KL term (default 6, the paper's value).
        norm: `"linf"` or `"l2"` threat model (fast_fgsm is L∞ only).
        value_range: `(low, high)` of the images fed to `fit`; adversarial images stay inside.
        from_logits: True if the model outputs logits, False for probabilities; None reads it off
            a final softmax and raises ValueError when the model does not show it.
        overfit_check: fast_fgsm only: after each epoch, measure PGD accuracy on one fixed training
            batch; when it falls more than `overfit_drop` below its best (catastrophic
            overfitting: FGSM-robust, PGD-broken), warn, restore the best weights and stop.
        overfit_drop: the drop in PGD accuracy (absolute, 0..1) that counts as a collapse.
        overfit_check_steps: PGD steps of that check (5, as Wong et al.).
        seed: seed of the random starts.

    Example:
        >>> import os, tempfile
        >>> from keras_aug.data import few_shot, load_dataset, make_pipeline
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])            # logits
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...               metrics=["accuracy"], jit_compile=False)
        >>> adv = AdversarialTraining(model, mode="fast_fgsm", eps=25.5, from_logits=True)
        >>> train_ds = make_pipeline(few_shot(load_dataset("digits").train, 2), batch_size=10)
        >>> history = adv.fit(train_ds, epochs=1, verbose=0)   # trains `model`'s weights
        >>> adv.export(os.path.join(tempfile.mkdtemp(), "served"), verbose=0)  # the plain model
    """

    def __init__(
        self,
        model: keras.Model,
        mode: str = "pgd",
        eps: float = 8.0,
        steps: int | None = None,
        step_size: float | None = None,
        ratio: float = 0.0,
        beta: float = 6.0,
        norm: str = "linf",
        value_range=(0, 255),
        from_logits: bool | None = None,
        overfit_check: bool = True,
        overfit_drop: float = 0.2,
        overfit_check_steps: int = 5,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
        self.mode = check_choice("mode", mode, MODES)
        self.value_range = check_value_range(value_range)
        self.norm = check_choice("norm", norm, NORMS)
        self.eps = check_eps(eps, self.value_range, norm=norm)
        if mode == "fast_fgsm" and norm != "linf":
            raise ValueError(f"norm must be 'linf' for mode='fast_fgsm' (an FGSM step), got {norm!r}")
        self.steps = DEFAULT_STEPS[mode] if steps is None else check_steps(steps)
        if mode == "fast_fgsm" and self.steps != 1:
            raise ValueError(f"steps must be 1 for mode='fast_fgsm' (one FGSM step), got {steps!r}; "
                             "use mode='pgd' for more steps")
        if step_size is None:
            step_size = 1.25 * self.eps if mode == "fast_fgsm" else default_step_size(self.eps, self.steps)
            self.step_size = float(step_size)
        else:
            self.step_size = check_step_size(step_size)
        check_number("ratio (the clean fraction of a batch)", ratio, 0, 1, high_open=True)
        if mode == "trades" and ratio != 0:
            raise ValueError("ratio applies to mode='pgd' or 'fast_fgsm'; TRADES always trains on "
                             f"clean and adversarial terms, weighted by beta. Got ratio={ratio!r}")
        self.ratio = float(ratio)
        self.beta = check_number("beta", beta, low=0)
        self.overfit_check = bool(overfit_check)
        self.overfit_drop = check_number("overfit_drop", overfit_drop, 0, 1, low_open=True)
        self.overfit_check_steps = check_steps(overfit_check_steps, "overfit_check_steps")
        self.from_logits = resolve_from_logits(model, from_logits)
        self.seed = seed
        self.classifier = model
        self.seed_generator = keras.random.SeedGenerator(seed, name="adversarial_seed")
        self.overfit_guard: CatastrophicOverfittingGuard | None = None
        if mode == "trades":
            self.kl_tracker = keras.metrics.Mean(name="kl")
        if getattr(model, "compiled", False) and hasattr(model, "get_compile_config"):
            config = model.get_compile_config()
            if config is not None:
                self.compile_from_config(config)

    # -- serving: the plain model ---------------------------------------------------------------

    def build(self, input_shape):
        if not self.classifier.built:
            self.classifier.build(input_shape)

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    # -- training -------------------------------------------------------------------------------

    @_plain
    def attack(self, images, labels) -> tf.Tensor:
        """Adversarial versions of `images` against the current weights (mode's attack)."""
        if self.mode == "trades":
            return self._trades_attack(images, labels)
        return pgd(self.classifier, images, labels, self.eps, steps=self.steps,
                   step_size=self.step_size, random_start=True, from_logits=self.from_logits,
                   value_range=self.value_range, norm=self.norm, seed=self.seed_generator)

    @_plain
    def adversarial_batch(self, images, labels) -> tuple[tf.Tensor, tf.Tensor]:
        """The batch `train_step` trains on for pgd/fast_fgsm, and a mask of its attacked rows.

        The first round(ratio·B) rows stay clean; the others are replaced by adversarial ones.
        """
        images = tf.cast(images, tf.float32)
        if self.ratio == 0.0:
            x_train = self.attack(images, labels)
            return x_train, tf.ones(tf.shape(images)[:1], tf.bool)
        batch = tf.shape(images)[0]
        n_clean = tf.cast(tf.round(self.ratio * tf.cast(batch, tf.float32)), tf.int32)
        x_adv = self.attack(images[n_clean:], labels[n_clean:])
        x_train = tf.concat([images[:n_clean], x_adv], axis=0)
        return x_train, tf.range(batch) >= n_clean

    @_plain
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self.mode == "trades":
            return self._trades_step(x, y, sample_weight)
        x_train, _ = self.adversarial_batch(x, y)
        with tf.GradientTape() as tape:
            y_pred = self(x_train, training=True)
            loss = self._compute_loss(x=x_train, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            self._track_loss(loss, x_train)
            loss = self.optimizer.scale_loss(loss)
        self._apply(tape, loss)
        return self.compute_metrics(x_train, y, y_pred, sample_weight=sample_weight)

    @_plain
    def _trades_attack(self, images, labels):
        images = tf.cast(images, tf.float32)
        p_clean = tf.stop_gradient(
            probabilities(self.classifier(images, training=False), self.from_logits))
        low, high = self.value_range
        # TRADES starts 0.001·N(0, 1) (in [0, 1] units) away from the image: at the image itself
        # the KL term and its gradient are exactly zero.
        start = images + 0.001 * (high - low) * keras.random.normal(
            tf.shape(images), seed=self.seed_generator)
        return pgd(self.classifier, images, labels, self.eps, steps=self.steps,
                   step_size=self.step_size, from_logits=self.from_logits,
                   value_range=self.value_range, norm=self.norm, start=start,
                   objective=lambda outputs: kl_divergence(p_clean, outputs, self.from_logits))

    @_plain
    def _trades_step(self, x, y, sample_weight):
        x = tf.cast(x, tf.float32)
        x_adv = self._trades_attack(x, y)
        batch = tf.shape(x)[0]
        with tf.GradientTape() as tape:
            outputs = self(tf.concat([x, x_adv], axis=0), training=True)
            y_clean, y_adv = outputs[:batch], outputs[batch:]
            ce = self._compute_loss(x=x, y=y, y_pred=y_clean, sample_weight=sample_weight,
                                    training=True)
            kl = tf.reduce_mean(kl_divergence(probabilities(y_clean, self.from_logits), y_adv,
                                              self.from_logits))
            loss = ce + self.beta * kl
            self._track_loss(loss, x)
            self.kl_tracker.update_state(kl)
            loss = self.optimizer.scale_loss(loss)
        self._apply(tape, loss)
        return self.compute_metrics(x, y, y_clean, sample_weight=sample_weight)

    def _track_loss(self, loss, x):
        from keras.src.losses.loss import unscale_loss_for_distribution

        self._loss_tracker.update_state(unscale_loss_for_distribution(loss),
                                        sample_weight=tf.shape(x)[0])

    def _apply(self, tape, loss):
        variables = self.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, after checking the first batch against `value_range` and, for
        fast_fgsm with `overfit_check`, adding a `CatastrophicOverfittingGuard` on that batch."""
        first = _first_batch(x, y)
        if first is not None:
            check_data_range(first[0], self.value_range, name="training images")
        callbacks = list(callbacks or [])
        self.overfit_guard = None
        if self.mode == "fast_fgsm" and self.overfit_check and first is not None:
            self.overfit_guard = CatastrophicOverfittingGuard(
                first[0], first[1], steps=self.overfit_check_steps, drop=self.overfit_drop)
            # First, so that timing callbacks count the check in the epoch it belongs to.
            callbacks.insert(0, self.overfit_guard)
        return super().fit(x, y, *args, callbacks=callbacks, **kwargs)

    # -- serialization --------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            model=keras.saving.serialize_keras_object(self.classifier),
            mode=self.mode, eps=self.eps, steps=self.steps, step_size=self.step_size,
            ratio=self.ratio, beta=self.beta, norm=self.norm, value_range=list(self.value_range),
            from_logits=self.from_logits, overfit_check=self.overfit_check,
            overfit_drop=self.overfit_drop, overfit_check_steps=self.overfit_check_steps,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"],
                                                                custom_objects=custom_objects)
        return cls(**config)


def _first_batch(x, y, size: int = 128):
    """The first `size` (images, labels) of what `fit` received (batched tf.data or arrays), or
    None for other input kinds. 128 as Wong et al.: a 32-image batch makes the check noisy."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        if (not isinstance(spec, (tuple, list)) or len(spec) < 2
                or spec[0].shape.rank is None or spec[0].shape.rank < 4):
            return None
        images, labels, count = [], [], 0
        for element in x:
            images.append(np.asarray(element[0], np.float32))
            labels.append(np.asarray(element[1]))
            count += len(images[-1])
            if count >= size:
                break
        return np.concatenate(images)[:size], np.concatenate(labels)[:size]
    if isinstance(x, (np.ndarray, tf.Tensor)) and y is not None:
        return np.asarray(x[:size], np.float32), np.asarray(y[:size])
    return None


class CatastrophicOverfittingGuard(keras.callbacks.Callback):
    """Early stop for fast FGSM training (Wong et al. 2020, section 5).

    FGSM training can suddenly stop being robust to PGD while staying robust to FGSM. After every
    epoch this measures PGD accuracy on one fixed batch (`check_accuracy`, also logged as
    `pgd_check_accuracy`); if it falls more than `drop` below its best, it warns, restores the
    weights of the best check and stops training. `triggered` and `history` record what happened.
    Attach to an `AdversarialTraining` model (`fit` does it for mode="fast_fgsm").

    Args:
        images: the fixed batch of training images checked after every epoch.
        labels: their labels (integer or one-hot).
        steps: PGD steps of the check (5, as Wong et al.).
        drop: fall in accuracy (absolute, 0..1) below the best check that counts as a collapse.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset, make_pipeline
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])
        >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...               jit_compile=False)
        >>> adv = AdversarialTraining(model, mode="fast_fgsm", eps=8.0, from_logits=True)
        >>> train = make_pipeline(few_shot(load_dataset("digits").train, 2), batch_size=10)
        >>> history = adv.fit(train, epochs=2, verbose=0)
        >>> len(adv.overfit_guard.history)      # one PGD check per epoch
        2
    """

    def __init__(self, images, labels, *, steps: int = 5, drop: float = 0.2):
        super().__init__()
        self.images = tf.constant(images, tf.float32)
        self.labels = tf.constant(labels)
        self.steps = check_steps(steps)
        self.drop = float(drop)
        self._robust_accuracy = None

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.best_weights = -1.0, None, None
        self.history: list[float] = []
        self.triggered = False

    def check_accuracy(self) -> float:
        adv = self.model
        if self._robust_accuracy is None:
            @tf.function(autograph=False)
            def robust_accuracy(images, labels):
                x_adv = pgd(adv.classifier, images, labels, adv.eps, steps=self.steps,
                            from_logits=adv.from_logits, value_range=adv.value_range,
                            norm=adv.norm, seed=adv.seed_generator)
                return tf.reduce_mean(accuracy(labels, adv.classifier(x_adv, training=False)))

            self._robust_accuracy = robust_accuracy
        return float(self._robust_accuracy(self.images, self.labels))

    def on_epoch_end(self, epoch, logs=None):
        accuracy = self.check_accuracy()
        self.history.append(accuracy)
        if logs is not None:
            logs["pgd_check_accuracy"] = accuracy
        if accuracy >= self.best:
            self.best, self.best_epoch = accuracy, epoch
            self.best_weights = self.model.get_weights()
        elif accuracy < self.best - self.drop:
            self.triggered = True
            warnings.warn(
                f"Catastrophic overfitting at epoch {epoch + 1}: PGD-{self.steps} accuracy on the "
                f"check batch fell to {accuracy:.3f} from {self.best:.3f} (epoch "
                f"{self.best_epoch + 1}). Restoring those weights and stopping; consider a smaller "
                "step_size or eps, or mode='pgd'.",
                RuntimeWarning,
                stacklevel=2,
            )
            self.model.set_weights(self.best_weights)
            self.model.stop_training = True


__all__ = ["AdversarialTraining", "CatastrophicOverfittingGuard", "MODES"]
