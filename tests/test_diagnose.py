"""keras_aug.diagnose: regimes on synthetic histories, the controller, no retracing, PNG, CLI."""
import argparse
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aug.core.base import _COMPILED
from keras_aug.diagnose import (
    GOOD_FIT,
    NOT_CONVERGED,
    OVERFITTING,
    UNDERFITTING,
    UNDETERMINED,
    AdaptiveAugmentation,
    FitDiagnosis,
    diagnose,
    load_history,
)
from keras_aug.diagnose.plot import plot_diagnosis
from keras_aug.layers import RandAugment, RandomContrast
from kaug.commands import diagnose as diagnose_cli


def curve(start, end, n=20, power=1.0):
    t = np.linspace(0, 1, n) ** power
    return list(start + (end - start) * t)


def history(loss, val_loss, acc=None, val_acc=None):
    out = {"loss": loss, "val_loss": val_loss}
    if acc is not None:
        out.update(accuracy=acc, val_accuracy=val_acc)
    return out


OVERFIT = history(curve(2.0, 0.01, power=0.3), curve(2.0, 0.5, 10) + curve(0.55, 1.2, 10),
                  curve(0.3, 1.0, power=0.3), curve(0.3, 0.75, power=0.3))
UNDERFIT = history(curve(2.3, 1.6, power=0.3), curve(2.3, 1.6, power=0.3),
                   curve(0.1, 0.45, power=0.3), curve(0.1, 0.44, power=0.3))
def plateau(start, end, n=20, tau=2.0):
    return list(end + (start - end) * np.exp(-np.arange(n) / tau))


GOOD = history(plateau(2.0, 0.1), plateau(2.0, 0.12), plateau(0.3, 0.98), plateau(0.3, 0.96))
NOT_DONE = history(curve(2.0, 0.3), curve(2.0, 0.35), curve(0.3, 0.95), curve(0.3, 0.93))


@pytest.mark.parametrize("hist, regime", [(OVERFIT, OVERFITTING), (UNDERFIT, UNDERFITTING),
                                          (GOOD, GOOD_FIT), (NOT_DONE, NOT_CONVERGED)])
def test_each_regime(hist, regime):
    d = diagnose(hist, chance=0.1)
    assert d.regime == regime, d.explain()
    assert d.recommendations and len(d.epoch_regimes) == 20
    assert d.epoch_regimes[0] == UNDETERMINED and d.epoch_regimes[-1] == regime
    assert "regime: " + regime in d.explain()


def test_overfitting_evidence_and_early_stop_epoch():
    d = diagnose(OVERFIT, chance=0.1)
    assert d.evidence["val_loss_rise"] > 0.1
    best = d.evidence["best_val_loss_epoch"]
    assert best == 10 and any(f"epoch {best}" in r for r in d.recommendations)
    assert any("strength" in r for r in d.recommendations)


def test_gap_alone_is_overfitting():
    flat = history(curve(1.0, 0.01), curve(1.0, 0.5), [1.0] * 20, [0.7] * 20)
    d = diagnose(flat, chance=0.1)
    assert d.regime == OVERFITTING and d.evidence["gap"] == pytest.approx(0.3)
    assert d.evidence["gap_ratio"] == pytest.approx(0.3 / 0.9)


def test_loss_only_history():
    d = diagnose(history(plateau(2.0, 0.1), plateau(2.0, 0.11)))
    assert d.regime == GOOD_FIT and "losses only" in d.reason


@pytest.mark.parametrize("hist, words", [
    ({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]}, "no validation"),
    (history([1.0, float("nan"), 0.5], [1.0, 0.9, 0.8]), "nan at epoch 2"),
    (history([1.0, 0.5], [1.0, float("inf")]), "inf at epoch 2"),
    (history([1.0], [1.0], [0.5], [0.5]), "1 epoch"),
])
def test_edge_cases_say_why(hist, words):
    d = diagnose(hist)
    assert d.regime == UNDETERMINED
    assert words in d.reason.lower() and d.recommendations


def test_argument_errors():
    with pytest.raises(TypeError, match="history"):
        diagnose([1, 2])
    with pytest.raises(ValueError, match="metric='auc'"):
        diagnose(GOOD, metric="auc")
    with pytest.raises(ValueError, match="chance"):
        diagnose(GOOD, chance=1.0)
    with pytest.raises(ValueError, match="window"):
        diagnose(GOOD, window=0)
    with pytest.raises(ValueError, match="lengths"):
        diagnose({"loss": [1, 2], "val_loss": [1]})


# ---------------------------------------------------------------- controller
class Logs:
    """Drive a callback's epoch hook with fixed logs."""

    def __init__(self, callback):
        self.callback = callback
        callback.on_train_begin()

    def epoch(self, epoch, **logs):
        self.callback.on_epoch_end(epoch, logs)
        return logs


def test_controller_moves_strength_the_right_way_and_stays_in_bounds():
    layer = RandomContrast(0.3)
    control = AdaptiveAugmentation(layer, target=0.2, gain=0.5, initial=0.0, bounds=(0.0, 0.8))
    drive = Logs(control)
    for epoch in range(10):  # memorizing: r = (1.0 - 0.1) / 1.0 = 0.9 > target
        logs = drive.epoch(epoch, loss=0.1, val_loss=1.0)
    assert control.strengths[1] > control.strengths[0] == 0.0
    assert layer.strength == pytest.approx(0.8)  # capped at the upper bound
    assert logs["augmentation_strength"] == pytest.approx(0.8)
    assert logs["overfitting_signal"] == pytest.approx(0.9)
    for epoch in range(10, 20):  # augmented training harder than validation: r < target
        drive.epoch(epoch, loss=1.0, val_loss=0.5)
    assert layer.strength == 0.0
    assert all(0.0 <= s <= 0.8 for s in control.strengths)


def test_controller_accuracy_signal_and_interval():
    layer = RandomContrast(0.3)
    control = AdaptiveAugmentation(layer, signal="accuracy", chance=0.1, target=0.1, gain=1.0,
                                   interval=2)
    drive = Logs(control)
    drive.epoch(0, accuracy=1.0, val_accuracy=0.55)  # r = 0.5: no update on odd epochs
    assert layer.strength == 0.0
    drive.epoch(1, accuracy=1.0, val_accuracy=0.55)
    assert layer.strength == pytest.approx(0.4)


def test_controller_errors():
    with pytest.raises(TypeError, match="live `strength`"):
        AdaptiveAugmentation(keras.layers.RandomFlip())
    with pytest.raises(ValueError, match="signal"):
        AdaptiveAugmentation(RandomContrast(0.3), signal="auc")
    with pytest.raises(ValueError, match="bounds"):
        AdaptiveAugmentation(RandomContrast(0.3), bounds=(0.5, 1.5))
    with pytest.raises(ValueError, match="initial"):
        AdaptiveAugmentation(RandomContrast(0.3), initial=0.9, bounds=(0.0, 0.5))
    control = AdaptiveAugmentation(RandomContrast(0.3))
    with pytest.raises(ValueError, match="validation_data"):
        Logs(control).epoch(0, loss=1.0)


def test_controller_leaves_strength_on_nan():
    layer = RandomContrast(0.3)
    control = AdaptiveAugmentation(layer, initial=0.5)
    with pytest.warns(UserWarning, match="non-finite"):
        logs = Logs(control).epoch(0, loss=float("nan"), val_loss=1.0)
    assert layer.strength == 0.5 and math.isnan(logs["overfitting_signal"])


def tracing_count(layer) -> int:
    return sum(fn.experimental_get_tracing_count() for fn in _COMPILED[layer].values())


def test_strength_changes_take_effect_in_tf_data_without_retracing():
    layer = RandomContrast((0.2, 0.2), seed=0, strength=0.0)
    images = tf.random.uniform([8, 8, 8, 1], 0, 255, seed=1)
    ds = tf.data.Dataset.from_tensors(images).repeat().map(layer)
    it = iter(ds)
    assert np.allclose(next(it), images, atol=1e-3)  # strength 0: identity
    count = tracing_count(layer)
    layer.strength = 1.0
    outs = [next(it) for _ in range(3)]  # the map has no prefetch here: the next batch sees it
    assert not np.allclose(outs[-1], images, atol=1e-2)
    assert tracing_count(layer) == count


def test_fit_with_both_callbacks_inside_the_model(tmp_path):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 255, (40, 8, 8, 1)).astype("float32")
    y = np.arange(40) % 4
    augment = RandAugment(2, 10.0, seed=0, jit_compile=False)
    model = keras.Sequential([keras.Input((8, 8, 1)), augment, keras.layers.Rescaling(1 / 255),
                              keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    control = AdaptiveAugmentation(augment, initial=0.0, target=0.0, gain=0.5)
    diagnosis = FitDiagnosis(plot_path=str(tmp_path / "fit.png"),
                             history_path=str(tmp_path / "history.json"), verbose=0, chance=0.25)
    history = model.fit(x[:24], y[:24], validation_data=(x[24:], y[24:]), epochs=6,
                        batch_size=8, verbose=0, callbacks=[control, diagnosis])
    strengths = history.history["augmentation_strength"]
    assert strengths[0] == 0.0 and max(strengths) > 0.0  # memorizing noise: strength rises
    assert tracing_count(augment) == 1  # traced once inside train_function, never again
    assert (tmp_path / "fit.png").stat().st_size > 1000
    assert diagnosis.diagnosis.regime in (OVERFITTING, UNDERFITTING, NOT_CONVERGED, GOOD_FIT)
    assert len(diagnosis.diagnoses) == 6
    saved = load_history(str(tmp_path / "history.json"))
    assert saved["augmentation_strength"] == pytest.approx(strengths)


def test_plot_and_cli_on_saved_histories(tmp_path, capsys):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(OVERFIT))
    png = plot_diagnosis(OVERFIT, str(tmp_path / "p.png"), chance=0.1)
    assert (tmp_path / "p.png").stat().st_size > 1000 and png.endswith("p.png")
    parser = argparse.ArgumentParser()
    diagnose_cli.register(parser.add_subparsers())
    args = parser.parse_args(["diagnose", str(path), "--chance", "0.1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "regime: overfitting" in out and (tmp_path / "history_diagnosis.png").exists()
    csv_path = tmp_path / "training.log"  # what keras.callbacks.CSVLogger writes
    csv_path.write_text("epoch,loss,val_loss\n0,1.0,1.0\n")
    args = parser.parse_args(["diagnose", str(csv_path), "--no-plot"])
    assert args.func(args) == 1 and "1 epoch(s)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a file"):
        load_history(str(tmp_path / "missing.json"))
