"""`kaug train` / `keras_aug.recipe.train`: decisions, budget, folders, outputs, serving."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_aug.recipe import RecipeData, holdout, train
from keras_aug.recipe.train import choose_trainer


def _env():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
                PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


def _topics(report):
    return [d.topic for d in report.decisions]


def _choices(report):
    # The step timing in "steps" is measured, so it is left out of the comparison.
    return [(d.topic, d.choice) for d in report.decisions]


def test_holdout_is_stratified_and_checked():
    labels = np.repeat(np.arange(3), [10, 5, 2])
    fit, val = holdout(labels, 0.2, seed=0)
    assert sorted(np.bincount(labels[val])) == [1, 1, 2]
    assert len(np.intersect1d(fit, val)) == 0 and len(fit) + len(val) == len(labels)
    with pytest.raises(ValueError, match="at least 2 per class"):
        holdout(np.array([0, 0, 1]), 0.2, seed=0)
    with pytest.raises(ValueError, match="fraction"):
        holdout(labels, 1.0, seed=0)


def test_bad_arguments_raise_before_training():
    with pytest.raises(ValueError, match="minutes"):
        train("digits", minutes=0)
    with pytest.raises(ValueError, match="search"):
        train("digits", search="sometimes")
    with pytest.raises(TypeError, match="data"):
        train(123)
    data = RecipeData.load("digits", per_class=3)
    with pytest.raises(ValueError, match="per_class"):
        train(data, per_class=3)
    with pytest.raises(TypeError, match="backbone"):
        choose_trainer((32, 32, 1), 10, 5, None)
    with pytest.raises(ValueError, match="would be ignored"):
        choose_trainer((32, 32, 1), 10, "none", "my.weights.h5")
    with pytest.raises(ValueError, match="too small to train"):
        train(data, minutes=0.05, progress=False)


def test_small_images_train_from_scratch_and_a_named_backbone_is_used():
    trainer, why = choose_trainer((32, 32, 1), 10, "auto", "imagenet")
    assert trainer.soft_labels and "below" in why
    trainer, why = choose_trainer((32, 32, 3), 10, "DigitsCNN04", "imagenet")
    assert not trainer.soft_labels and "DigitsCNN04" in trainer.name
    with pytest.raises(ValueError, match="steps applies"):
        train(RecipeData.load("digits/rgb32", per_class=3), backbone="DigitsCNN04", steps=50)


def test_a_class_too_small_is_named(tmp_path):
    from PIL import Image

    for name, n in (("cat", 6), ("dog", 2)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / name / f"{i}.png")
    with pytest.raises(ValueError, match="'dog'"):
        RecipeData.load(f"folder:{tmp_path}", per_class=4)


def test_one_compiled_model_serves_every_run_from_its_initial_state():
    import keras

    from keras_aug.recipe.train import LEARNING_RATE, ScratchTrainer, _CosineRate, snapshot

    trainer = ScratchTrainer((16, 16, 1), 3)
    model = trainer.build(0, 100)
    initial = snapshot(model)
    model.fit(np.random.rand(6, 16, 16, 1) * 255, np.eye(3)[np.arange(6) % 3], verbose=0)
    assert int(model.optimizer.iterations.numpy()) > 0
    train_step = model.train_function
    again = trainer.build(0, 100)
    assert again is model and again.train_function is train_step  # no new compile
    assert int(again.optimizer.iterations.numpy()) == 0
    assert all(np.array_equal(a, b) for a, b in zip(snapshot(again), initial))
    # the per-batch cosine is Keras' CosineDecay (which a compiled step would bake in)
    rate, cosine = _CosineRate(40), keras.optimizers.schedules.CosineDecay(LEARNING_RATE, 40)
    rate.set_model(model)
    for step in range(45):
        rate.on_train_batch_begin(step)
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(
            float(cosine(step)), rel=1e-5, abs=1e-9)


def test_an_adaptive_candidate_is_driven_then_replayed_in_the_refit():
    from keras_aug.diagnose import AdaptiveAugmentation
    from keras_aug.recipe.train import _strength_callbacks, augmentation_candidates

    data = RecipeData.load("digits", per_class=3)
    [candidate] = [c for c in augmentation_candidates(data, {"fill_mode": "reflect"})
                   if c.adaptive]
    augment = candidate.build(0)
    [controller] = _strength_callbacks(candidate, augment, val=object(), k=10)
    assert isinstance(controller, AdaptiveAugmentation)
    with pytest.raises(RuntimeError, match="strengths of its validated run"):
        _strength_callbacks(candidate, augment, None, 10)
    candidate.strengths = [0.5, 0.7, 0.9]
    [replay] = _strength_callbacks(candidate, augment, None, 10)
    for epoch, expected in ((0, 0.5), (1, 0.7), (2, 0.9), (5, 0.9)):
        replay.on_epoch_begin(epoch)
        assert float(augment.layers[0].strength) == pytest.approx(expected)
    trainer, _ = choose_trainer((32, 32, 3), 10, "DigitsCNN04", "imagenet")
    assert not trainer.accepts(candidate)  # fine_tune's phases: validated for the CNN only


@pytest.mark.slow
def test_cli_end_to_end_writes_a_served_model_and_the_report(tmp_path):
    from kaug.cli import main

    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--per-class", "3", "--minutes", "5",
                 "--steps", "40", "--out", str(out), "--no-progress"]) == 0
    for name in ("model.keras", "report.md", "report.json", "learning_curves.png",
                 "confusion.png", "preview.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert [d["topic"] for d in report["decisions"]][:3] == ["data", "validation", "model"]
    assert report["test"]["accuracy"] > 0.1  # above chance after 40 steps on 30 digits
    text = (out / "report.md").read_text()
    assert "## Decisions" in text and "learning_curves.png" in text and "test (final model" in text
    # TensorFlow's own tool serves it in a fresh process; its classes match model.keras.
    import keras

    from keras_aug.data import dataset_to_numpy, load_dataset

    images, _ = dataset_to_numpy(load_dataset("digits").test.take(4))
    np.save(tmp_path / "batch.npy", images)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    done = subprocess.run([cli, "run", "--dir", str(out / "saved_model"), "--tag_set", "serve",
                           "--signature_def", "serving_default", "--inputs",
                           f"images={tmp_path / 'batch.npy'}"],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = re.search(r"Result for output key class:\n\[(.*?)\]", done.stdout, re.S)
    assert served, done.stdout[-2000:]
    model = keras.models.load_model(out / "model.keras")
    predicted = np.argmax(model.predict(images.astype(np.float32), verbose=0), axis=-1)
    assert re.findall(r"b'(\w+)'", served.group(1)) == [str(c) for c in predicted]


@pytest.mark.slow
def test_decisions_and_scores_are_reproducible_under_a_seed():
    data = RecipeData.load("digits", per_class=3, seed=4)
    runs = [train(data, minutes=5, steps=30, seed=4, progress=False).report for _ in range(2)]
    assert _choices(runs[0]) == _choices(runs[1])
    [adaptive] = [c for c in runs[0].candidates if c.adaptive]
    assert len(adaptive.strengths) == 10 and all(0 <= v <= 1 for v in adaptive.strengths)
    # the augmentation map runs in order (make_pipeline(reproducible=True)): same draws, same
    # batches, same scores
    assert [c.accuracy for c in runs[0].candidates] == [c.accuracy for c in runs[1].candidates]
    assert runs[0].test["accuracy"] == runs[1].test["accuracy"]


@pytest.mark.slow
def test_folder_of_mixed_photos_within_the_budget(tmp_path):
    """Mixed sizes and formats, a grayscale image, a corrupt file; the default steps do not fit
    the budget, so `train` shortens them and still ends on time."""
    import time

    from PIL import Image

    rng = np.random.default_rng(0)
    for c, name in enumerate(("bright", "dark")):
        (tmp_path / name).mkdir()
        for i in range(8):
            size = (40 + 4 * i, 36 + 2 * i)
            base = 200 if c == 0 else 40
            pixels = np.clip(base + rng.normal(0, 20, (*size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.{'jpg' if i % 2 else 'png'}")
        Image.fromarray(np.full((30, 30), base, np.uint8)).save(tmp_path / name / "gray.png")
    (tmp_path / "dark" / "broken.jpg").write_bytes(b"not a jpeg")
    minutes = 2.0  # 1.0 left no run at 512 ms/step in a loaded full suite
    start = time.time()
    with pytest.warns(UserWarning, match="broken.jpg"):
        result = train(f"folder:{tmp_path}", minutes=minutes, out=str(tmp_path / "out"),
                       progress=False)
    assert time.time() - start < 60 * minutes + 30
    report = result.report
    assert any("broken.jpg" in s for s in report.skipped)
    assert "broken.jpg" in (tmp_path / "out" / "report.md").read_text()
    assert result.model.input_shape[-1] == 3 and report.test is None
    assert report.validation["accuracy"] >= 0.5
    assert "steps" in _topics(report)


@pytest.mark.slow
def test_a_pretrained_backbone_is_fine_tuned():
    data = RecipeData.load("digits/rgb32", per_class=5)
    result = train(data, backbone="DigitsCNN04", minutes=5, progress=False)
    assert "DigitsCNN04" in result.report.decisions[2].choice
    assert result.report.test["accuracy"] > 0.5
