"""Keras callbacks: `FitDiagnosis` names the regime after each epoch; `AdaptiveAugmentation`
sets augmentation strength from a validation-based overfitting signal."""
from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import keras

from keras_aug.core.live import Live
from keras_aug.diagnose.regimes import Diagnosis, diagnose

SIGNALS = ("loss", "accuracy")


class FitDiagnosis(keras.callbacks.Callback):
    """After each epoch, classify the run's regime (see `keras_aug.diagnose.diagnose`).

    Keeps its own copy of the epoch logs, so the verdict is available during training
    (`callback.diagnosis`, one per epoch in `callback.diagnoses`) and at the end.

    Args:
        plot_path: write the learning curves with the regimes shaded here at the end of
            training (a `.png`); `None` writes nothing.
        history_path: write the epoch logs as JSON here at the end of training (what
            `kaug diagnose history.json` reads); `None` writes nothing.
        verbose: 1 prints a line when the regime changes and the full explanation at the end;
            0 is silent.
        **diagnose_kwargs: passed to `diagnose` (`metric`, `chance`, `gap_threshold`, ...).

    Example:
        >>> diagnosis = FitDiagnosis(chance=0.1, plot_path="runs/fit.png")
        >>> model.fit(train, validation_data=val, epochs=30, callbacks=[diagnosis])  # doctest: +SKIP
        >>> print(diagnosis.diagnosis.explain())  # doctest: +SKIP
    """

    def __init__(self, plot_path: str | None = None, history_path: str | None = None,
                 verbose: int = 1, **diagnose_kwargs: Any):
        super().__init__()
        for name, value in (("plot_path", plot_path), ("history_path", history_path)):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a file path or None, got {value!r}")
        if verbose not in (0, 1):
            raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
        diagnose({"loss": [1.0], "val_loss": [1.0]}, **diagnose_kwargs)  # validate them now
        self.plot_path = plot_path
        self.history_path = history_path
        self.verbose = verbose
        self.diagnose_kwargs = diagnose_kwargs
        self.history: dict[str, list[float]] = {}
        self.diagnoses: list[Diagnosis] = []

    @property
    def diagnosis(self) -> Diagnosis | None:
        """The diagnosis after the latest epoch (`None` before the first)."""
        return self.diagnoses[-1] if self.diagnoses else None

    def on_train_begin(self, logs=None):
        self.history, self.diagnoses = {}, []

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        result = diagnose(self.history, **self.diagnose_kwargs)
        previous = self.diagnosis
        self.diagnoses.append(result)
        if self.verbose and (previous is None or previous.regime != result.regime):
            print(f"\nFitDiagnosis, epoch {epoch + 1}: {result.regime} ({result.reason})")

    def on_train_end(self, logs=None):
        if not self.diagnoses:
            return
        if self.history_path:
            _makedirs_for(self.history_path)
            with open(self.history_path, "w") as f:
                json.dump(self.history, f, indent=1)
        if self.plot_path:
            from keras_aug.diagnose.plot import plot_diagnosis

            plot_diagnosis(self.history, self.plot_path, self.diagnosis)
        if self.verbose:
            print(self.diagnosis.explain())


class AdaptiveAugmentation(keras.callbacks.Callback):
    """Drive a keras_aug layer's, Pipeline's or policy's `strength` from the overfitting signal.

    An integral controller in the manner of StyleGAN2-ADA, on a validation-based signal: after
    every `interval` epochs it measures `r` and moves strength by `gain * (r - target)`, clipped to
    `bounds`. Signals:
    - `"loss"` (default): `r = (val_loss - loss) / val_loss`, clipped to [-1, 1]. Near 1 when the
      model memorizes the training set (training loss collapses while validation loss does not);
      0 or below when the augmented training set is as hard as the validation set.
    - `"accuracy"`: `r = (acc - val_acc) / (acc - chance)`, clipped to [-1, 1].
    Training metrics are those Keras logs, measured on augmented batches: stronger augmentation
    lowers them, which is the feedback that lets the controller settle.

    Strength is a live variable read in-graph (`keras_aug.core.live`), so the change takes effect
    at the next batch in `tf.data` and inside a compiled model, without a retrace (batches already
    prefetched keep the old strength; under the tf.data service workers keep the value the
    dataset was distributed with). The strength used during each epoch and the signal are added
    to the epoch logs (`augmentation_strength`, `overfitting_signal`), hence to `History`.

    Args:
        layer: an object with a live `strength` (a keras_aug layer, `Pipeline` or policy layer).
        target: the signal value to hold. 0.2 by default: ADA's 0.6 never raised strength on
            the digits demo, where dropout keeps the training loss near the validation loss
        signal: `"loss"` or `"accuracy"`.
        gain: strength change per unit of error per update.
        initial: strength set at the start of training (`None` keeps the layer's).
        bounds: `(low, high)` within [0, 1] that strength stays in.
        interval: update every this many epochs.
        metric: the accuracy-like metric for `signal="accuracy"`.
        chance: that metric at chance level (`1 / num_classes`).

    Example:
        >>> augment = keras_aug.layers.RandAugment(2, 10)
        >>> controller = AdaptiveAugmentation(augment, initial=0.0)
        >>> model.fit(train, validation_data=val, epochs=20, callbacks=[controller])  # doctest: +SKIP
    """

    def __init__(self, layer: Any, target: float = 0.2, signal: str = "loss",
                 gain: float = 0.3, initial: float | None = 0.0,
                 bounds: tuple[float, float] = (0.0, 1.0), interval: int = 1,
                 metric: str = "accuracy", chance: float = 0.0):
        super().__init__()
        if not isinstance(getattr(type(layer), "strength", None), Live):
            raise TypeError(
                f"layer must have a live `strength` (a keras_aug layer, Pipeline or policy); "
                f"{type(layer).__module__}.{type(layer).__name__} has none, so the controller "
                f"would change nothing. Wrap Keras' own layers' job in keras_aug layers.")
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        for name, value in (("target", target), ("gain", gain), ("chance", chance)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
                value
            ):
                raise TypeError(f"{name} must be a finite number, got {value!r}")
        if gain <= 0:
            raise ValueError(f"gain must be > 0, got {gain!r}")
        if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) for b in bounds)
                or not 0.0 <= bounds[0] <= bounds[1] <= 1.0):
            raise ValueError(f"bounds must be (low, high) with 0 <= low <= high <= 1, got "
                             f"{bounds!r}")
        if initial is not None and not (isinstance(initial, (int, float))
                                        and bounds[0] <= initial <= bounds[1]):
            raise ValueError(f"initial must be None or a number within bounds {tuple(bounds)}, "
                             f"got {initial!r}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a positive integer, got {interval!r}")
        if not isinstance(metric, str):
            raise TypeError(f"metric must be a string, got {metric!r}")
        self.layer = layer
        self.target = float(target)
        self.signal = signal
        self.gain = float(gain)
        self.initial = None if initial is None else float(initial)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.interval = interval
        self.metric = metric
        self.chance = float(chance)
        self.strengths: list[float] = []  # strength used during each epoch
        self.signals: list[float] = []
        self._warned_nan = False

    def on_train_begin(self, logs=None):
        if self.initial is not None:
            self.layer.strength = self.initial
        self.strengths, self.signals = [], []

    def measure(self, logs: dict) -> float:
        """The overfitting signal `r` from one epoch's logs (see the class docstring)."""
        keys = (("loss", "val_loss") if self.signal == "loss"
                else (self.metric, f"val_{self.metric}"))
        missing = [k for k in keys if k not in logs]
        if missing:
            raise ValueError(
                f"AdaptiveAugmentation(signal={self.signal!r}) needs {missing} in the epoch logs "
                f"(got {sorted(logs)}): pass validation_data= to fit"
                + ("" if self.signal == "loss" else f" and compile with metrics=['{self.metric}']"))
        train, val = float(logs[keys[0]]), float(logs[keys[1]])
        if self.signal == "loss":
            r = (val - train) / max(abs(val), 1e-8)
        else:
            r = (train - val) / max(train - self.chance, 1e-8)
        return max(-1.0, min(1.0, r)) if math.isfinite(r) else float("nan")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        used = float(self.layer.strength)
        r = self.measure(logs)
        self.strengths.append(used)
        self.signals.append(r)
        # Writing into `logs` puts both in History (Keras runs History after user callbacks).
        logs["augmentation_strength"] = used
        logs["overfitting_signal"] = r
        if not math.isfinite(r):
            if not self._warned_nan:
                warnings.warn(f"AdaptiveAugmentation: non-finite losses at epoch {epoch + 1}; "
                              "strength left unchanged", stacklevel=2)
                self._warned_nan = True
            return
        if (epoch + 1) % self.interval == 0:
            low, high = self.bounds
            self.layer.strength = min(high, max(low, used + self.gain * (r - self.target)))


def _makedirs_for(path) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
