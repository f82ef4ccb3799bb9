"""Name the fitting regime of a run from its learning curves, with the evidence and what to do.

`diagnose(history)` reads a Keras `History.history`-style dict (one list per metric, one value per
epoch: `loss`, `val_loss`, optionally a higher-is-better metric such as `accuracy` and
`val_accuracy`) and returns a `Diagnosis`: one of the regimes below, the numbers it was decided
on, and recommendations tied to this toolkit. Pure Python/NumPy: usable offline on a saved
history (`load_history`) as well as from the `FitDiagnosis` callback.

Regimes (decided on the last `window` epochs, in this order):
- undetermined: the curves cannot support a verdict (no validation metrics, NaN/inf losses, a
  single epoch); the diagnosis says why instead of guessing.
- overfitting: validation loss has risen above its minimum while training loss did not, or the
  train-validation metric gap is above `gap_threshold`.
- underfitting: the training metric is far from attainable (below `attainable - underfit_margin
  * (attainable - chance)`), whether still improving or flat.
- not converged: the fit is close, no overfitting yet, but validation loss is still falling.
- good fit: none of the above.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

UNDERFITTING = "underfitting"
GOOD_FIT = "good fit"
OVERFITTING = "overfitting"
NOT_CONVERGED = "not converged"
UNDETERMINED = "undetermined"
REGIMES = (UNDERFITTING, NOT_CONVERGED, GOOD_FIT, OVERFITTING, UNDETERMINED)

# Keys a training loop adds to its logs that are not learning curves.
_NOT_CURVES = ("epoch", "lr", "learning_rate", "augmentation_strength", "overfitting_signal")

RECOMMENDATIONS = {
    OVERFITTING: [
        "stronger augmentation: raise the layer's or Pipeline's `strength`, or let "
        "`keras_aug.diagnose.AdaptiveAugmentation` set it from the validation gap",
        "a policy: keras_aug.layers.RandAugment / TrivialAugmentWide / AutoAugment (or a searched "
        "policy) instead of hand-picked layers",
        "mixing: keras_aug.layers.MixUp or CutMix after the other augmentation",
        "more data: conditional GAN samples (`kaug gan train`, gan.SampleGenerator as tf.data)",
        "a pretrained backbone fine-tuned with fewer trainable blocks (finetune.plan, "
        "unfreeze_blocks=1)",
        "stop at the validation minimum: keras.callbacks.EarlyStopping(restore_best_weights=True) "
        "rather than more capacity",
    ],
    UNDERFITTING: [
        "more capacity: a wider/deeper model, or a pretrained backbone with more blocks unfrozen "
        "(finetune.plan, unfreeze_blocks)",
        "weaker regularization: lower augmentation `strength`, less dropout / weight decay, no "
        "mixing",
        "train longer or with a higher learning rate while the training loss still falls",
    ],
    NOT_CONVERGED: [
        "train longer: validation loss is still falling at the last epoch",
        "keep the augmentation; `AdaptiveAugmentation` raises it if a gap opens later",
    ],
    GOOD_FIT: [
        "keep this setup; to check for headroom, try `AdaptiveAugmentation` (it only raises "
        "strength when the validation gap opens)",
    ],
}


@dataclass
class Diagnosis:
    """The regime of a run, the numbers behind it and what to do next.

    Attributes:
        regime: one of `REGIMES`.
        reason: one sentence saying why this regime (for `undetermined`: what is missing).
        evidence: the numbers the verdict was decided on (see `diagnose`).
        recommendations: concrete next steps with this toolkit.
        epoch_regimes: the regime the curves showed up to each epoch (`undetermined` for the
            first), used to shade the learning-curve picture.

    Example:
        >>> history = {"loss": [2.0, 1.0, 0.5, 0.2, 0.1, 0.05], "accuracy": [.3, .6, .8, .9, .97, 1.],
        ...            "val_loss": [2.0, 1.2, 1.0, 1.1, 1.3, 1.6],
        ...            "val_accuracy": [.3, .55, .62, .62, .61, .6]}
        >>> diagnosis = diagnose(history, chance=0.1)
        >>> diagnosis.regime
        'overfitting'
    """

    regime: str
    reason: str
    evidence: dict[str, float] = field(default_factory=dict)
    recommendations: list[str] = field(default_factory=list)
    epoch_regimes: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """A readable multi-line report: regime, reason, evidence, recommendations."""
        lines = [f"regime: {self.regime}", f"why: {self.reason}"]
        if self.evidence:
            lines.append("evidence:")
            lines += [f"  {k} = {_format(v)}" for k, v in self.evidence.items()]
        if self.recommendations:
            lines.append("what to do:")
            lines += [f"  - {r}" for r in self.recommendations]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"regime": self.regime, "reason": self.reason, "evidence": dict(self.evidence),
                "recommendations": list(self.recommendations),
                "epoch_regimes": list(self.epoch_regimes)}


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def diagnose(
    history: Mapping[str, Sequence[float]] | Any,
    *,
    metric: str | None = None,
    chance: float = 0.0,
    attainable: float = 1.0,
    gap_threshold: float = 0.1,
    rise_threshold: float = 0.1,
    underfit_margin: float = 0.15,
    improving_threshold: float = 0.01,
    window: int | None = None,
) -> Diagnosis:
    """Classify a run's regime from its per-epoch learning curves.

    Args:
        history: a dict of per-epoch lists (`History.history`), a `keras.callbacks.History`, or
            anything with a `.history` dict. Needs `loss` and `val_loss`.
        metric: a higher-is-better metric logged as `metric` and `val_metric` (default:
            `accuracy` if logged, else the first such pair found; none: judged on losses alone,
            and underfitting cannot be told).
        chance: the metric of a model that learned nothing (`1 / num_classes` for accuracy).
        attainable: the best value the training metric can reach (1.0 for accuracy).
        gap_threshold: a train - validation metric gap above this is overfitting.
        rise_threshold: validation loss this fraction above its minimum (while training loss
            did not rise) is overfitting.
        underfit_margin: the training metric below `attainable - underfit_margin * (attainable -
            chance)` is underfitting.
        improving_threshold: a loss falling faster than this fraction per epoch is still
            improving.
        window: epochs at the end averaged for the verdict (default `max(2, epochs // 5)`); they
            smooth noisy validation curves.

    Returns:
        A `Diagnosis`.

    Example:
        >>> d = diagnose({"loss": [1.0, 0.4, 0.1, 0.02], "val_loss": [1.0, 0.7, 0.8, 1.1],
        ...               "accuracy": [0.5, 0.9, 0.98, 1.0], "val_accuracy": [0.5, 0.7, 0.72, 0.7]},
        ...              chance=0.1)
        >>> d.regime
        'overfitting'
    """
    curves = _as_history(history)
    _check_args(chance=chance, attainable=attainable, gap_threshold=gap_threshold,
                rise_threshold=rise_threshold, underfit_margin=underfit_margin,
                improving_threshold=improving_threshold, window=window)
    metric = _pick_metric(curves, metric)
    regimes = []
    for end in range(1, _length(curves) + 1):
        prefix = {k: v[:end] for k, v in curves.items()}
        regimes.append(_classify(prefix, metric, chance, attainable, gap_threshold,
                                 rise_threshold, underfit_margin, improving_threshold,
                                 window).regime)
    result = _classify(curves, metric, chance, attainable, gap_threshold, rise_threshold,
                       underfit_margin, improving_threshold, window)
    result.epoch_regimes = regimes
    return result


def _check_args(window, **numbers) -> None:
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not (
            math.isfinite(value)
        ):
            raise TypeError(f"{name} must be a finite number, got {value!r}")
    if not numbers["chance"] < numbers["attainable"]:
        raise ValueError(f"chance ({numbers['chance']}) must be below attainable "
                         f"({numbers['attainable']})")
    for name in ("gap_threshold", "rise_threshold", "underfit_margin", "improving_threshold"):
        if numbers[name] < 0:
            raise ValueError(f"{name} must be >= 0, got {numbers[name]!r}")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                               or window < 1):
        raise ValueError(f"window must be a positive integer or None, got {window!r}")


def _as_history(history) -> dict[str, list[float]]:
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if not isinstance(history, Mapping):
        raise TypeError("history must be a dict of per-epoch lists (History.history), a "
                        f"keras.callbacks.History or a path for load_history; got "
                        f"{type(history).__name__}")
    curves = {}
    for key, values in history.items():
        if key in _NOT_CURVES:
            continue
        if isinstance(values, (int, float)):
            values = [values]
        try:
            curves[str(key)] = [float(v) for v in values]
        except (TypeError, ValueError):
            continue  # non-numeric columns (a CSV's text) are not curves
    lengths = {len(v) for v in curves.values()}
    if len(lengths) > 1:
        raise ValueError(f"history curves have different lengths "
                         f"{ {k: len(v) for k, v in curves.items()} }")
    return curves


def _length(curves) -> int:
    return len(next(iter(curves.values()))) if curves else 0


def _pick_metric(curves, metric: str | None) -> str | None:
    if metric is not None:
        if not isinstance(metric, str):
            raise TypeError(f"metric must be a string or None, got {metric!r}")
        if metric not in curves:
            raise ValueError(f"metric={metric!r} is not in the history (keys: {sorted(curves)})")
        return metric
    if "accuracy" in curves:
        return "accuracy"
    for key in curves:
        if (key != "loss" and not key.startswith("val_") and f"val_{key}" in curves
                and "loss" not in key and "error" not in key):
            return key
    return None


def _tail(values: Sequence[float], window: int) -> float:
    return float(np.mean(values[-window:]))


def _slope(values: Sequence[float], window: int) -> float:
    """Relative change per epoch over the last `window + 1` epochs (least squares)."""
    part = np.asarray(values[-(window + 1):], dtype=float)
    if len(part) < 2:
        return 0.0
    slope = np.polyfit(np.arange(len(part)), part, 1)[0]
    return float(slope / max(abs(float(np.mean(part))), 1e-8))


def _classify(curves, metric, chance, attainable, gap_threshold, rise_threshold,
              underfit_margin, improving_threshold, window) -> Diagnosis:
    n = _length(curves)
    if "loss" not in curves:
        return Diagnosis(UNDETERMINED, f"the history has no 'loss' curve (keys: {sorted(curves)}); "
                         "pass the History of model.fit or its saved history.json")
    if "val_loss" not in curves:
        return Diagnosis(
            UNDETERMINED,
            "no validation metrics (val_loss): the regime cannot be told from training curves "
            "alone. Pass validation_data= (or validation_split=) to model.fit.",
            {"epochs": n}, ["hold out a validation split, even a few images per class"])
    for key in ("loss", "val_loss") + ((metric, f"val_{metric}") if metric else ()):
        bad = [i for i, v in enumerate(curves.get(key, [])) if not math.isfinite(v)]
        if bad:
            return Diagnosis(
                UNDETERMINED,
                f"{key} is {curves[key][bad[0]]} at epoch {bad[0] + 1}: training diverged, so "
                "the curves say nothing about fit.",
                {"epochs": n, "first_non_finite_epoch": bad[0] + 1},
                ["lower the learning rate (or clip gradients)",
                 "check the inputs for NaN/inf and the loss for log(0)",
                 "with mixed precision, use a LossScaleOptimizer"])
    if n < 2:
        return Diagnosis(UNDETERMINED,
                         f"{n} epoch(s) logged: a regime needs a trend, at least 2 epochs.",
                         {"epochs": n},
                         ["train for more epochs (or validate more often: smaller "
                          "steps_per_epoch)"])

    w = window or max(2, n // 5)
    w = min(w, n)
    loss, val_loss = curves["loss"], curves["val_loss"]
    best = int(np.argmin(val_loss))
    evidence: dict[str, float] = {
        "epochs": n,
        "window": w,
        "train_loss": _tail(loss, w),
        "val_loss": _tail(val_loss, w),
        "best_val_loss": float(val_loss[best]),
        "best_val_loss_epoch": best + 1,
        # how far the recent validation loss is above its minimum, as a fraction of it
        "val_loss_rise": _tail(val_loss, w) / max(float(val_loss[best]), 1e-8) - 1.0,
        "train_loss_slope": _slope(loss, w),
        "val_loss_slope": _slope(val_loss, w),
    }
    train_rising = evidence["train_loss_slope"] > improving_threshold
    loss_rising = (evidence["val_loss_rise"] > rise_threshold and best < n - 1
                   and not train_rising)
    gap = ratio = train_metric = None
    if metric:
        train_metric = _tail(curves[metric], w)
        val_metric = _tail(curves[f"val_{metric}"], w)
        gap = train_metric - val_metric
        ratio = gap / max(train_metric - chance, 1e-8)
        evidence.update({f"train_{metric}": train_metric, f"val_{metric}": val_metric,
                         "gap": gap, "gap_ratio": ratio,
                         f"underfit_below": attainable - underfit_margin * (attainable - chance)})
    still_improving = evidence["val_loss_slope"] < -improving_threshold

    def verdict(regime, reason):
        recs = list(RECOMMENDATIONS[regime])
        if regime == OVERFITTING and best < n - 1:
            recs[-1] = (f"stop at the validation minimum (epoch {best + 1}): "
                        "keras.callbacks.EarlyStopping(restore_best_weights=True) rather than "
                        "more capacity")
        if regime == UNDERFITTING and not (evidence["train_loss_slope"] < -improving_threshold):
            recs = recs[:2] + ["training loss is flat: train longer will not help; raise the "
                               "learning rate or capacity"]
        return Diagnosis(regime, reason, evidence, recs)

    if loss_rising:
        return verdict(OVERFITTING, f"validation loss is {evidence['val_loss_rise']:.0%} above its "
                       f"minimum at epoch {best + 1} while training loss did not rise")
    if gap is not None and gap > gap_threshold:
        return verdict(OVERFITTING, f"train {metric} exceeds validation by {gap:.3f} "
                       f"(> gap_threshold {gap_threshold}), {ratio:.0%} of what was learned "
                       "above chance")
    if train_metric is not None and train_metric < evidence["underfit_below"]:
        trend = "still improving" if evidence["train_loss_slope"] < -improving_threshold else "flat"
        return verdict(UNDERFITTING, f"train {metric} {train_metric:.3f} is far from attainable "
                       f"{attainable} (below {evidence['underfit_below']:.3f}); training loss "
                       f"is {trend}")
    if gap is None and evidence["val_loss"] > 1.5 * evidence["train_loss"] + 1e-3:
        return verdict(OVERFITTING, f"validation loss {evidence['val_loss']:.3g} is well above "
                       f"training loss {evidence['train_loss']:.3g} (judged on losses only)")
    if still_improving:
        return verdict(NOT_CONVERGED, f"validation loss still falls "
                       f"{-evidence['val_loss_slope']:.1%} per epoch at the end")
    reason = "small generalization gap and flat validation loss"
    if gap is None:
        reason += " (judged on losses only: log a metric such as accuracy to detect underfitting)"
    return verdict(GOOD_FIT, reason)


def load_history(path: str) -> dict[str, list[float]]:
    """Read a saved history: JSON (`History.history` dumped, or `{"history": {...}}`) or the CSV
    file `keras.callbacks.CSVLogger` writes.

    Args:
        path: a `.json` or `.csv` file.

    Example:
        >>> json.dump(model.fit(...).history, open("history.json", "w"))  # doctest: +SKIP
        >>> print(diagnose(load_history("history.json")).explain())  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"path {path!r} is not a file")
    with open(path, newline="") as f:
        text = f.read()
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        if isinstance(data.get("history"), Mapping):
            data = data["history"]
        return {k: v for k, v in data.items() if isinstance(v, list)}
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise ValueError(f"{path} is neither a JSON history nor a CSVLogger file with rows")
    history: dict[str, list[float]] = {}
    for key in rows[0]:
        if key == "epoch":
            continue
        try:
            history[key] = [float(row[key]) for row in rows]
        except (TypeError, ValueError):
            continue
    if "loss" not in history:
        raise ValueError(f"{path}: no 'loss' column (columns: {list(rows[0])})")
    return history
