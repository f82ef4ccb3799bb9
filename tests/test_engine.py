"""The augmentation engine (keras_aug.core): input formats, training switch, seeding, export."""
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aug.core import AugmentationLayer
from keras_aug.layers import RandomFlip


@keras.saving.register_keras_serializable(package="keras_aug_tests")
class AddNoise(AugmentationLayer):
    """A minimal subclass: adds a per-sample constant (shows every engine path)."""

    def sample_params(self, batch_size, images, draws):
        return {"offset": draws.uniform([batch_size], 1.0, 10.0)}

    def augment_images(self, images, params):
        return tf.clip_by_value(images + params["offset"][:, None, None, None], *self.value_range)

    def augment_labels(self, labels, params):
        return labels + 100


def images(n=8, h=6, w=5, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 200, (n, h, w, c)).astype("float32")


def test_standalone_call_augments_and_training_false_is_identity():
    x = images()
    layer = AddNoise(seed=0)
    assert not np.allclose(layer(x), x)
    assert np.array_equal(layer(x, training=False), x)


def test_per_sample_parameters():
    x = np.zeros((16, 4, 4, 1), "float32")
    offsets = np.asarray(AddNoise(seed=1)(x))[:, 0, 0, 0]
    assert len(np.unique(offsets)) == 16


def test_input_structures_and_dtypes():
    x = images()
    y = np.arange(8)
    layer = AddNoise(seed=0)
    out_x, out_y = layer((x, y))
    assert out_x.shape == x.shape and np.array_equal(out_y, y + 100)
    out_x2, out_y2 = layer(x, y)  # how ds.map(layer) calls it on (images, labels) elements
    assert np.array_equal(out_y2, y + 100)
    data = {"images": x, "labels": y, "segmentation_masks": np.zeros((8, 6, 5, 1)), "id": "keep"}
    before = dict(data)
    out = layer(data)
    assert data == before and data["images"] is before["images"]  # caller's dict not mutated
    assert out["id"] == "keep" and set(out) == set(data)
    single = layer(x[0])
    assert single.shape == x[0].shape
    assert layer(x.astype("uint8")).dtype == tf.uint8
    assert layer(x.astype("float64")).dtype == tf.float64
    assert layer(x.astype("float16")).dtype == tf.float16


def test_seed_gives_reproducible_sequences():
    x = images()
    a, b = AddNoise(seed=7), AddNoise(seed=7)
    first = [np.asarray(a(x)) for _ in range(3)]
    second = [np.asarray(b(x)) for _ in range(3)]
    assert all(np.array_equal(u, v) for u, v in zip(first, second))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], np.asarray(AddNoise(seed=8)(x)))


def test_fixed_key_identical_with_and_without_xla():
    x = tf.constant(images())
    key = tf.constant([3, 4], tf.int64)
    jit = RandomFlip("horizontal_and_vertical")
    nojit = RandomFlip("horizontal_and_vertical")
    nojit.jit_compile = False
    a = jit.augment({"images": x}, key)["images"]
    b = nojit.augment({"images": x}, key)["images"]
    assert np.array_equal(a, b)


def test_p_zero_and_one():
    x = images()
    assert np.array_equal(AddNoise(p=0.0, seed=0)(x), x)
    out = np.asarray(AddNoise(p=1.0, seed=0)(x))
    assert np.all(np.any(out != x, axis=(1, 2, 3)))  # p=1 always applies
    half = np.asarray(AddNoise(p=0.5, seed=0)(images(n=64)))
    changed = np.any(half != images(n=64), axis=(1, 2, 3)).mean()
    assert 0.25 < changed < 0.75


def _classifier(layer):
    inputs = keras.Input((6, 5, 3))
    x = layer(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_inside_model_augments_only_when_training(tmp_path):
    x = images()
    model = _classifier(AddNoise(seed=0))
    plain = keras.Model(model.input, model.layers[-1](model.layers[-2](model.input)))
    expected = plain.predict(x, verbose=0)
    assert np.allclose(model(x), expected, atol=1e-5)  # model(x): no training flag -> identity
    assert np.allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert not np.allclose(model(x, training=True), expected, atol=1e-3)
    model.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    assert np.allclose(reloaded.serve(tf.constant(x)), expected, atol=1e-5)


def test_augmentation_only_sequential_augments():
    x = images()
    pipeline = keras.Sequential([AddNoise(seed=0), RandomFlip(seed=0)])
    assert not np.allclose(pipeline(x), x)


def test_fit_with_xla_and_layer_in_model():
    model = _classifier(AddNoise(seed=0))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    history = model.fit(images(), np.arange(8) % 2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_no_repeated_draws_in_parallel_map():
    """Keras' layers repeat 8-22 of 200 batches under AUTOTUNE; ours must repeat none."""
    x = np.full((200, 4, 8, 8, 1), 100.0, "float32")
    for seed in (None, 5):
        layer = AddNoise(seed=seed)
        ds = tf.data.Dataset.from_tensor_slices(x).map(layer, num_parallel_calls=tf.data.AUTOTUNE)
        batches = {np.asarray(b).tobytes() for b in ds}
        assert len(batches) == 200


def test_tf_data_service_workers_do_not_repeat_draws():
    """Two tf.data service workers running the same pipeline must not repeat each other's draws.

    (Keras' RandAugment(seed=42): 15 of 32 batches identical.) An unseeded layer salts its key per
    worker; a seeded layer is reproducible by definition, so each worker replays the same sequence.
    """
    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    workers = [
        tf.data.experimental.service.WorkerServer(
            tf.data.experimental.service.WorkerConfig(dispatcher_address=address)
        )
        for _ in range(2)
    ]
    layer = AddNoise()
    ds = tf.data.Dataset.from_tensor_slices(np.full((32, 4, 8, 8, 1), 100.0, "float32"))
    ds = ds.map(layer).apply(
        tf.data.experimental.service.distribute("parallel_epochs", dispatcher.target)
    )
    batches = [np.asarray(b).tobytes() for b in ds]
    assert len(batches) == 64  # each worker produced the 32 batches
    assert len(set(batches)) == 64
    del workers


def test_value_range_warning_once():
    layer = AddNoise(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer(images() / 255.0)
        layer(images() / 255.0)
    messages = [str(w.message) for w in caught if "value_range" in str(w.message)]
    assert len(messages) == 1 and "value_range=(0, 1)" in messages[0]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"p": 1.5}, ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
        ({"p": -0.1}, ValueError, "p must be a probability"),
        ({"value_range": (255, 0)}, ValueError, "value_range must have low < high"),
        ({"value_range": "0-255"}, ValueError, "value_range must be a pair"),
        ({"seed": "a"}, TypeError, "seed must be an integer or None, got 'a'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        AddNoise(**kwargs)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((4, 4), "float32"), ValueError, "images must have rank 4 .* got rank 2"),
        (np.zeros((1, 2, 4, 4, 3), "float32"), ValueError, "got rank 5"),
        (np.zeros((2, 4, 4, 3), "int32"), TypeError, "float .* or uint8, got dtype int32"),
        (np.zeros((2, 4, 4, 2), "float32"), ValueError, "images must have 1 or 3 or 4 channels, got 2"),
        (np.zeros((0, 4, 4, 3), "float32"), ValueError, "empty batch"),
        (np.full((2, 4, 4, 3), np.nan, "float32"), ValueError, "NaN or infinite"),
    ],
)
def test_bad_images(x, error, match):
    with pytest.raises(error, match=match):
        AddNoise()(x)


def test_bad_structures():
    x = images()
    with pytest.raises(ValueError, match="needs an 'images' key"):
        AddNoise()({"image": x})
    with pytest.raises(ValueError, match=r"must be \(images, labels\), got a tuple of length 3"):
        AddNoise()((x, x, x))


def test_fit_under_mirrored_strategy_on_two_logical_cpus():
    code = (
        "import tensorflow as tf\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "import keras, numpy as np\n"
        "from keras_aug.layers import RandomFlip\n"
        "strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])\n"
        "with strategy.scope():\n"
        "    model = keras.Sequential([keras.Input((8, 8, 1)), RandomFlip(seed=1),\n"
        "                              keras.layers.Flatten(), keras.layers.Dense(2)])\n"
        "    model.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))\n"
        "x = np.random.rand(64, 8, 8, 1).astype('float32') * 255\n"
        "y = (x[:, :4].mean((1, 2, 3)) > x[:, 4:].mean((1, 2, 3))).astype(int)\n"
        "h = model.fit(x, y, epochs=2, batch_size=16, verbose=0)\n"
        "assert np.all(np.isfinite(h.history['loss']))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
