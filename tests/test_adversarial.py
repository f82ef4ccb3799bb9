"""keras_aug.adversarial: attack budgets and ranges, loss ordering, the training wrapper (ratio,
gradient isolation, fit/save/export, the overfitting guard), evaluation, CLI and bad input."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug  # noqa: E402,F401
from keras_aug.adversarial import (  # noqa: E402
    AdversarialTraining,
    CatastrophicOverfittingGuard,
    evaluate_robustness,
    fgsm,
    format_robustness_table,
    pgd,
    resolve_from_logits,
    save_adversarial_examples,
)
from keras_aug.adversarial.attacks import classification_loss, random_start  # noqa: E402

SHAPE = (8, 8, 1)
CLASSES = 3


def make_data(n=96, seed=0, scale=255.0):
    """Class c = a bright blob in a class-specific place, plus noise: learnable in seconds."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.uniform(0, 0.3, (n, *SHAPE))
    for i, c in enumerate(y):
        x[i, 2 * c:2 * c + 3, 2:6, 0] += 0.6
    return (np.clip(x, 0, 1) * scale).astype("float32"), y.astype("int64")


def tiny_model(seed=0, softmax=False):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(SHAPE),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(CLASSES, activation="softmax" if softmax else None),
    ])


def compiled_model(seed=0):
    model = tiny_model(seed)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=False)
    return model


@pytest.fixture(scope="module")
def trained():
    x, y = make_data()
    model = compiled_model()
    model.fit(x, y, batch_size=32, epochs=15, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] > 0.9
    return model, x, y


# -- budgets and ranges -------------------------------------------------------------------------


@pytest.mark.parametrize("value_range,eps", [((0, 255), 25.5), ((0, 1), 0.1)])
def test_linf_attacks_respect_eps_and_value_range(trained, value_range, eps):
    model, x, y = trained
    scale = value_range[1] / 255.0
    inputs = x * scale
    # The model expects 0..255; wrap it so the attack works in the given range.
    wrapped = keras.Sequential([keras.Input(SHAPE), keras.layers.Rescaling(1 / scale), model])
    for x_adv in (fgsm(wrapped, inputs, y, eps, value_range=value_range),
                  pgd(wrapped, inputs, y, eps, steps=5, value_range=value_range, seed=1)):
        delta = np.asarray(x_adv) - inputs
        assert np.abs(delta).max() <= eps * (1 + 1e-5)
        assert np.abs(delta).max() >= 0.99 * eps  # the budget is used
        assert np.asarray(x_adv).min() >= value_range[0]
        assert np.asarray(x_adv).max() <= value_range[1]
    # FGSM moves every unclipped pixel by exactly ±eps
    delta = np.asarray(fgsm(wrapped, inputs, y, eps, value_range=value_range)) - inputs
    inside = (inputs > value_range[0] + eps) & (inputs < value_range[1] - eps)
    np.testing.assert_allclose(np.abs(delta[inside]), eps, rtol=1e-4)


def test_l2_attack_respects_eps_and_value_range(trained):
    model, x, y = trained
    eps = 300.0  # L2 in 0..255 units over 64 pixels
    x_adv = pgd(model, x, y, eps, steps=5, norm="l2", seed=2)
    norms = np.sqrt(((np.asarray(x_adv) - x) ** 2).reshape(len(x), -1).sum(-1))
    assert norms.max() <= eps * (1 + 1e-4)
    assert norms.mean() > 0.5 * eps
    assert np.asarray(x_adv).min() >= 0 and np.asarray(x_adv).max() <= 255
    start = random_start(tf.constant([16, *SHAPE]), eps, "l2", seed=3)
    start_norms = np.sqrt((np.asarray(start) ** 2).reshape(16, -1).sum(-1))
    assert start_norms.max() <= eps * (1 + 1e-4) and start_norms.min() > 0
    x_fgsm = fgsm(model, x, y, eps, norm="l2")
    norms = np.sqrt(((np.asarray(x_fgsm) - x) ** 2).reshape(len(x), -1).sum(-1))
    assert norms.max() <= eps * (1 + 1e-4)


def test_pgd_is_seeded_and_same_under_tf_function(trained):
    model, x, y = trained
    a = pgd(model, x, y, 20.0, steps=3, seed=5)
    b = pgd(model, x, y, 20.0, steps=3, seed=5)
    c = tf.function(lambda x, y: pgd(model, x, y, 20.0, steps=3, seed=5))(x, y)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(a), np.asarray(c), atol=1e-3)


def test_pgd_loss_beats_fgsm_beats_clean(trained):
    model, x, y = trained
    eps = 20.0

    def loss(images):
        return float(tf.reduce_mean(classification_loss(y, model(images, training=False), True)))

    clean = loss(x)
    fgsm_loss = loss(fgsm(model, x, y, eps))
    pgd_loss = loss(pgd(model, x, y, eps, steps=20, seed=0))
    assert pgd_loss >= fgsm_loss > clean, (clean, fgsm_loss, pgd_loss)
    assert fgsm_loss > 1.5 * clean


# -- the training wrapper -----------------------------------------------------------------------


def test_ratio_is_honoured(trained):
    model, x, y = trained
    adv = AdversarialTraining(model, mode="pgd", eps=20.0, steps=2, ratio=0.25, from_logits=True)
    x_train, attacked = adv.adversarial_batch(x[:16], y[:16])
    attacked = np.asarray(attacked)
    assert attacked.sum() == 12 and not attacked[:4].any()
    changed = np.abs(np.asarray(x_train) - x[:16]).reshape(16, -1).max(-1) > 0
    np.testing.assert_array_equal(changed, attacked)
    all_adv = AdversarialTraining(model, mode="fast_fgsm", eps=20.0, from_logits=True)
    x_train, attacked = all_adv.adversarial_batch(x[:10], y[:10])
    assert np.asarray(attacked).all()
    assert (np.abs(np.asarray(x_train) - x[:10]).reshape(10, -1).max(-1) > 0).all()


def test_attack_gradients_do_not_reach_parameters(trained):
    model, x, y = trained
    before = [w.copy() for w in model.get_weights()]
    with tf.GradientTape(persistent=True) as tape:
        x_adv = pgd(model, x, y, 20.0, steps=3, seed=0)
        loss = tf.reduce_mean(classification_loss(y, model(x_adv, training=True), True))
    # the adversarial images carry no dependence on the weights ...
    assert all(g is None for g in tape.gradient(x_adv, model.trainable_variables))
    # ... so the training gradient equals the one computed on constant images
    through = tape.gradient(loss, model.trainable_variables)
    with tf.GradientTape() as tape2:
        constant = tf.reduce_mean(classification_loss(
            y, model(tf.constant(np.asarray(x_adv)), training=True), True))
    direct = tape2.gradient(constant, model.trainable_variables)
    for a, b in zip(through, direct):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # and attacking does not change the weights
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["pgd", "fast_fgsm", "trades"])
def test_fit_trains_the_wrapped_model(mode):
    x, y = make_data(64, seed=1)
    model = compiled_model(seed=1)
    adv = AdversarialTraining(model, mode=mode, eps=10.0, steps=None if mode == "fast_fgsm" else 2,
                              from_logits=True, seed=0)
    before = [w.copy() for w in model.get_weights()]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    validation = (x, y) if mode == "pgd" else None  # one mode suffices: validation is clean
    history = adv.fit(ds, epochs=1, verbose=0, validation_data=validation)
    expected = {"loss", "accuracy"} | ({"val_loss", "val_accuracy"} if validation else set())
    expected |= {"kl"} if mode == "trades" else set()
    expected |= {"pgd_check_accuracy"} if mode == "fast_fgsm" else set()
    assert expected <= set(history.history), history.history.keys()
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # the wrapper serves the plain model
    np.testing.assert_allclose(adv.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_save_load_and_export_serve_the_plain_model(trained, tmp_path):
    _, x, y = trained
    model = compiled_model(seed=2)
    adv = AdversarialTraining(model, mode="fast_fgsm", eps=10.0, from_logits=True, seed=0)
    adv.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "adv.keras")
    adv.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, AdversarialTraining)
    assert (loaded.mode, loaded.eps, loaded.from_logits) == ("fast_fgsm", 10.0, True)
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)
    export_dir = str(tmp_path / "served")
    adv.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)  # keep a reference while serving
    served = reloaded.serve(tf.constant(x))
    np.testing.assert_allclose(np.asarray(served), expected, atol=1e-5)


def test_uncompiled_model_needs_compile_on_the_wrapper():
    x, y = make_data(32)
    adv = AdversarialTraining(tiny_model(), mode="pgd", eps=5.0, steps=1, from_logits=True)
    with pytest.raises(ValueError, match="compile"):
        adv.fit(x, y, epochs=1, verbose=0)
    adv.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    adv.fit(x, y, epochs=1, verbose=0)


def test_overfitting_guard_restores_best_weights(trained):
    model, x, y = trained
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    adv = AdversarialTraining(clone, mode="fast_fgsm", eps=0.5, from_logits=True)
    guard = CatastrophicOverfittingGuard(x, y, steps=2, drop=0.2)
    guard.set_model(adv)
    guard.on_train_begin()
    good = [w.copy() for w in adv.get_weights()]
    logs = {}
    guard.on_epoch_end(0, logs)
    assert logs["pgd_check_accuracy"] > 0.9 and not guard.triggered
    clone.layers[-1].kernel.assign(tf.zeros_like(clone.layers[-1].kernel))  # collapse
    with pytest.warns(RuntimeWarning, match="Catastrophic overfitting"):
        guard.on_epoch_end(1, {})
    assert guard.triggered and adv.stop_training
    for a, b in zip(good, adv.get_weights()):
        np.testing.assert_array_equal(a, b)


# -- evaluation ---------------------------------------------------------------------------------


def test_evaluate_robustness_table_and_picture(trained, tmp_path):
    model, x, y = trained
    ds = tf.data.Dataset.from_tensor_slices((x, y))  # unbatched: batched inside
    rows = evaluate_robustness(model, ds, ["fgsm", "pgd-5"], eps=[0.0, 80.0], from_logits=True,
                               batch_size=40)
    assert [(r["attack"], r["eps"]) for r in rows] == [
        ("clean", 0.0), ("fgsm", 0.0), ("fgsm", 80.0), ("pgd-5", 0.0), ("pgd-5", 80.0)]
    clean = model.evaluate(x, y, verbose=0)[1]
    assert rows[0]["accuracy"] == pytest.approx(clean, abs=1e-6)
    assert rows[1]["accuracy"] == rows[3]["accuracy"] == rows[0]["accuracy"]
    assert rows[4]["accuracy"] <= rows[2]["accuracy"] + 0.05 and rows[4]["accuracy"] < clean
    assert all(r["n"] == len(x) for r in rows)
    table = format_robustness_table(rows)
    assert "| pgd-5 | linf | 80 | 0.314 |" in table
    path = save_adversarial_examples(model, x[:4], y[:4], str(tmp_path / "adv.png"), 80.0,
                                     attack="pgd-5", from_logits=True)
    assert os.path.getsize(path) > 1000


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(eps=-1.0), ValueError, r"eps must be >= 0.*-1\.0"),
    (dict(eps=300.0), ValueError, "exceeds the width of value_range"),
    (dict(steps=0), ValueError, r"steps must be an integer >= 1, got 0"),
    (dict(steps=2.5), ValueError, r"steps must be an integer >= 1, got 2.5"),
    (dict(mode="free"), ValueError, r"mode must be one of \['pgd', 'fast_fgsm', 'trades'\], got 'free'"),
    (dict(norm="l1"), ValueError, r"norm must be one of .*'l1'"),
    (dict(mode="fast_fgsm", steps=3), ValueError, "steps must be 1 for mode='fast_fgsm'"),
    (dict(mode="fast_fgsm", norm="l2"), ValueError, "norm must be 'linf' for mode='fast_fgsm'"),
    (dict(ratio=1.0), ValueError, r"ratio .* must be a number in \[0, 1\), got 1.0"),
    (dict(mode="trades", ratio=0.5), ValueError, "ratio applies to mode='pgd' or 'fast_fgsm'"),
    (dict(step_size=0.0), ValueError, r"step_size .*must be a number > 0, got 0.0"),
    (dict(beta=-1), ValueError, "beta must be a number >= 0, got -1"),
    (dict(value_range=(1, 0)), ValueError, "value_range must have low < high"),
])
def test_wrapper_rejects_bad_arguments(kwargs, error, match):
    args = dict(eps=8.0, from_logits=True)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        AdversarialTraining(tiny_model(), **args)


def test_attacks_reject_bad_arguments(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match=r"eps must be >= 0"):
        fgsm(model, x, y, -0.5)
    with pytest.raises(ValueError, match=r"steps must be an integer >= 1, got 0"):
        pgd(model, x, y, 8.0, steps=0)
    with pytest.raises(ValueError, match=r"norm must be one of \['linf', 'l2'\], got 'l3'"):
        pgd(model, x, y, 8.0, norm="l3")
    with pytest.raises(ValueError, match=r"attacks must contain 'fgsm', 'pgd' or 'pgd-K'.*'cw'"):
        evaluate_robustness(model, (x, y), ["cw"], eps=[8.0], from_logits=True)


def test_output_kind_must_be_stated_or_visible():
    with pytest.raises(ValueError, match=r"Cannot tell whether the model outputs logits or "
                                         r"probabilities: its last layer is Dense\(activation=linear\)"):
        AdversarialTraining(tiny_model(), eps=8.0)
    assert resolve_from_logits(tiny_model(softmax=True), None) is False
    AdversarialTraining(tiny_model(softmax=True), eps=8.0)  # a final softmax is detected
    with pytest.raises(ValueError, match=r"from_logits=True, but the model's last layer is "
                                         r"Dense\(activation=softmax\)"):
        AdversarialTraining(tiny_model(softmax=True), eps=8.0, from_logits=True)
    with pytest.raises(ValueError, match=r"from_logits=False, but .* outputs unnormalised"):
        AdversarialTraining(tiny_model(), eps=8.0, from_logits=False)
    with pytest.raises(TypeError, match="from_logits must be True, False or None, got 'yes'"):
        AdversarialTraining(tiny_model(), eps=8.0, from_logits="yes")
    with pytest.raises(TypeError, match="model must be a keras.Model, got function"):
        AdversarialTraining(lambda x: x, eps=8.0, from_logits=True)
    with pytest.raises(ValueError, match="Cannot tell whether"):
        evaluate_robustness(tiny_model(), (np.zeros((2, *SHAPE)), np.zeros(2)), eps=[1.0])


def test_value_range_mismatch_is_caught(trained):
    model, x, y = trained
    adv = AdversarialTraining(compiled_model(), eps=8.0, steps=1, from_logits=True)
    with pytest.raises(ValueError, match=r"training images lie in \[.*\] but value_range="
                                         r"\(0\.0, 255\.0\): they look scaled to \[0, 1\]"):
        adv.fit(x / 255.0, y, epochs=1, verbose=0)
    ds = tf.data.Dataset.from_tensor_slices((x - 128.0, y)).batch(16)
    with pytest.raises(ValueError, match=r"training images lie in \[-12\d\.\d+, .*outside value_range"):
        adv.fit(ds, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"images lie in .* outside value_range=\(0, 1\)"):
        pgd(model, x, y, 0.1, value_range=(0, 1))
    with pytest.raises(ValueError, match="dataset images lie in"):
        evaluate_robustness(model, (x / 255.0, y), eps=[8.0], from_logits=True)


# -- CLI ----------------------------------------------------------------------------------------


def write_image_folder(root, n_per_class=8):
    """train/ and test/ folders of 8x8 grey PNGs, one subfolder per class (a tiny dataset)."""
    from PIL import Image

    x, y = make_data(2 * n_per_class * CLASSES, seed=3)
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / ("train" if i % 2 else "test") / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0].astype("uint8"), "L").save(folder / f"{i}.png")
    return root


def test_cli_trains_evaluates_and_writes_outputs(tmp_path, capsys):
    from kaug.cli import main

    data = write_image_folder(tmp_path / "data")
    out = tmp_path / "adv"
    assert main(["adversarial", "--dataset", f"folder:{data}", "--mode", "fast_fgsm", "--epochs",
                 "1", "--eps", "25.5", "--eval-attacks", "fgsm", "pgd-2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| pgd-2 | linf | 25.5 | 0.100 |" in printed and "CPU-s/epoch" in printed
    assert {"results.md", "adversarial_examples.png", "model.keras"} <= set(os.listdir(out))
    assert main(["adversarial", "--mode", "pgd", "--eps", "-1", "--out", str(out)]) == 2
    assert "eps must be >= 0" in capsys.readouterr().err
