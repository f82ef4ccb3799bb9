"""`export_classifier`: the SavedModel serves raw images of any size (and encoded bytes) with the
pixels, probabilities and class names of training; TensorFlow's own `saved_model_cli` runs it."""
import io
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_aug.data import load_dataset, resize_images
from keras_aug.layers import RandomFlip
from keras_aug.recipe.serving import CLASS_NAMES_FILE, export_classifier

NAMES = ["cat", "dog", "owl"]
SIZE = (16, 12)


def classifier(channels, head_activation=None, seed=0):
    """A tiny CNN trained a few steps on three brightness classes, with augmentation inside."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((*SIZE, channels)),
        RandomFlip("horizontal", seed=seed),          # keras_aug: must be off when served
        keras.layers.RandomTranslation(0.2, 0.2),     # Keras' own random layer: off too
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(len(NAMES), activation=head_activation),
    ])
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(NAMES), 96)
    images = (labels[:, None, None, None] * 100 + rng.integers(0, 50, (96, *SIZE, channels))).astype("float32")
    loss = "sparse_categorical_crossentropy" if head_activation else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss)
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = classifier(3)
    path = export_classifier(model, tmp_path_factory.mktemp("served") / "model", class_names=NAMES,
                             image_size=SIZE, channels=3)
    return model, path, tf.saved_model.load(path)


def expected(model, images, logits=True):
    pixels = resize_images(images, SIZE).numpy().astype("float32")
    scores = model.predict(pixels, verbose=0)
    return tf.nn.softmax(scores).numpy() if logits else scores


@pytest.mark.parametrize("shape", [(2, 40, 50, 3), (3, 9, 7, 3)])
def test_serve_equals_predict_on_resized_images(exported, shape):
    model, _, served = exported
    images = np.random.default_rng(shape[1]).integers(0, 256, shape, dtype=np.uint8)
    out = served.serve(tf.constant(images))
    want = expected(model, images)
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (shape[0], 3)
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    assert [c.decode() for c in out["class"].numpy()] == [NAMES[i] for i in want.argmax(-1)]
    # serving_default is the same function, under its TF Serving name
    again = served.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(again["probabilities"].numpy(), want, atol=1e-5)


def test_class_names_are_in_the_saved_model(exported):
    _, path, served = exported
    assert [n.decode() for n in served.class_names().numpy()] == NAMES
    with open(os.path.join(path, CLASS_NAMES_FILE), encoding="utf-8") as file:
        assert file.read().splitlines() == NAMES


def test_serve_encoded_sees_the_pixels_the_folder_loader_gave_training(exported, tmp_path):
    """PNG and JPEG bytes of other sizes: served probabilities == predict on the loaded images."""
    model, _, served = exported
    rng = np.random.default_rng(1)
    encoded = []
    for name, (shape, fmt) in zip(("cat", "dog"), [((30, 20, 3), "PNG"), ((25, 41, 3), "JPEG")]):
        (tmp_path / name).mkdir()
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buffer, format=fmt)
        (tmp_path / name / f"0.{fmt.lower()}").write_bytes(buffer.getvalue())
        encoded.append(buffer.getvalue())
    loaded = np.stack([x for x, _ in load_dataset(f"folder:{tmp_path}", image_size=SIZE).train.as_numpy_iterator()])
    out = served.serve_encoded(tf.constant(encoded))
    want = tf.nn.softmax(model.predict(loaded.astype("float32"), verbose=0)).numpy()
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    assert out["class"].shape == (2,)


@pytest.mark.slow
def test_saved_model_cli_serves_it_in_a_fresh_process(exported):
    """TensorFlow's own tool. TF 2.21's `--input_exprs` takes Python literals only (it refuses
    `np.zeros(...)`), so the images go in as a nested list."""
    model, path, served = exported
    images = np.random.default_rng(2).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
         "--input_exprs", f"images={images.tolist()}"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"Result for output key class:\n\[(.*?)\]", result.stdout)
    assert match, result.stdout[-3000:]
    want = [NAMES[i] for i in expected(model, images).argmax(-1)]
    assert re.findall(r"b'(\w+)'", match.group(1)) == want


def test_grayscale_softmax_model(tmp_path):
    model = classifier(1, head_activation="softmax", seed=1)
    path = export_classifier(model, tmp_path / "gray", class_names=NAMES, image_size=SIZE, channels=1)
    served = tf.saved_model.load(path)
    images = np.random.default_rng(3).integers(0, 256, (4, 33, 21, 1), dtype=np.uint8)
    out = served.serve(tf.constant(images))
    # The model already returns probabilities: served as they are, not softmaxed again.
    np.testing.assert_allclose(out["probabilities"].numpy(), expected(model, images, logits=False), atol=1e-5)
    gif = io.BytesIO()
    Image.fromarray(images[0, ..., 0]).save(gif, format="GIF")  # TF decodes GIFs as RGB only
    assert served.serve_encoded(tf.constant([gif.getvalue()]))["probabilities"].shape == (1, 3)


def test_bad_arguments_raise(exported, tmp_path):
    model = exported[0]
    ok = dict(class_names=NAMES, image_size=SIZE, channels=3)
    cases = [
        (dict(ok, class_names=["cat", "dog"]), ValueError, "class_names has 2 names but the model returns 3"),
        (dict(ok, class_names="cat"), TypeError, "class_names must be a sequence of strings"),
        (dict(ok, class_names=["cat", "cat", "owl"]), ValueError, "at least 2 distinct non-empty strings"),
        (dict(ok, channels=4), ValueError, r"channels must be 1 \(grayscale\) or 3 \(RGB\), got 4"),
        (dict(ok, channels=1), ValueError, r"model does not accept images of shape \(batch, 16, 12, 1\)"),
        (dict(ok, image_size=(16,)), ValueError, r"image_size must be \(height, width\)"),
        (dict(ok, image_size=(16, 0)), ValueError, r"image_size must be \(height, width\).*got \(16, 0\)"),
        (dict(ok, image_size=(20, 20)), ValueError, r"model does not accept images of shape \(batch, 20, 20, 3\)"),
        (dict(ok, outputs="scores"), ValueError, "outputs must be one of"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            export_classifier(model, tmp_path / "x", **kwargs)
    sigmoid = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.Flatten(),
                                keras.layers.Dense(3, activation="sigmoid")])
    with pytest.raises(ValueError, match="pass outputs='logits' or outputs='probabilities'"):
        export_classifier(sigmoid, tmp_path / "x", **ok)
    with pytest.raises(TypeError, match="model must be a keras.Model"):
        export_classifier(lambda x: x, tmp_path / "x", **ok)
    assert not (tmp_path / "x").exists()
