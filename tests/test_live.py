"""Live state: p, strength, factor ranges and policy tables change between batches, no retrace."""
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.core.base import _COMPILED
from keras_aug.policies import Policy
from layer_cases import CROPS, MIXING, POLICIES, K, layer_names, make_layer

# integer-valued pixels: 8-bit posterize and solarize thresholds are exact identities on them
IMAGES = tf.round(tf.random.stateless_uniform([4, 16, 16, 3], [1, 2], 0, 254))
LABELS = tf.one_hot([0, 1, 2, 3], K)


def _call(layer, images=IMAGES):
    name = type(layer).__name__
    if name in MIXING:
        return layer((images, LABELS))[0]
    return layer(images)


def _traces(layer) -> int:
    return sum(fn.experimental_get_tracing_count() for fn in _COMPILED[layer].values())


@pytest.mark.parametrize("name", layer_names())
def test_strength_zero_is_identity(name):
    if name in POLICIES:
        pytest.skip("policies: strength scales magnitudes (see test_policy_strength_zero)")
    layer = make_layer(name, seed=1)
    _call(layer)
    layer.strength = 0.0
    out = _call(layer)
    if name in CROPS:  # no augmentation = the deterministic inference crop
        expected = layer(IMAGES, training=False)
    else:
        expected = IMAGES
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-3)


def test_policy_strength_zero():
    layer = L.RandAugment(2, 9, ops=("Rotate", "ShearX", "TranslateY", "Brightness", "Contrast",
                                     "Posterize", "Solarize", "Cutout"), seed=0)
    assert not np.allclose(layer(IMAGES), IMAGES)
    layer.strength = 0.0
    # magnitude 0: every op at its identity parameter (Solarize inverts only pixels == high)
    np.testing.assert_allclose(layer(IMAGES).numpy(), IMAGES.numpy(), atol=1e-3)


@pytest.mark.parametrize("name", layer_names())
def test_live_assignments_do_not_retrace(name):
    layer = make_layer(name, seed=1)
    first = _call(layer)
    traces = _traces(layer)
    layer.strength = 0.5
    if name != "CenterCrop":
        layer.p = 0.5
    for attr in layer.live_variables:  # reassigning every public live attribute is accepted
        if not attr.startswith("_") and attr not in ("p", "strength"):
            setattr(layer, attr, getattr(layer, attr))
    second = _call(layer)
    assert _traces(layer) == traces
    if name not in ("CenterCrop",):
        assert not np.array_equal(first.numpy(), second.numpy()), "the change had no effect"


def test_p_takes_effect_at_next_batch_eager_and_tf_data():
    layer = L.RandomInvert(p=0.0, seed=0)
    changed = lambda out: int(np.sum(np.any(out.numpy() != IMAGES.numpy(), axis=(1, 2, 3))))  # noqa: E731
    assert changed(layer(IMAGES)) == 0
    layer.p = 1.0
    assert changed(layer(IMAGES)) == 4
    ds = tf.data.Dataset.from_tensors(IMAGES).repeat(2).map(layer)  # traced with p = 1
    layer.p = 0.0
    assert [changed(b) for b in ds] == [0, 0]
    layer.p = 1.0
    assert [changed(b) for b in ds] == [4, 4]
    assert _traces(layer) == 1


def test_range_and_strength_take_effect_in_tf_data():
    layer = L.RandomBrightness((0.5, 0.5), seed=0)
    images = tf.fill([2, 8, 8, 3], 100.0)
    ds = tf.data.Dataset.from_tensors(images).map(layer)
    assert float(next(iter(ds))[0, 0, 0, 0]) == pytest.approx(150.0)
    layer.factor = (-0.5, -0.5)
    assert float(next(iter(ds))[0, 0, 0, 0]) == pytest.approx(50.0)
    layer.strength = 0.5
    assert float(next(iter(ds))[0, 0, 0, 0]) == pytest.approx(75.0)


def test_live_change_in_compiled_model_fit():
    """In a jit-compiled train step: p changes the loss at the next batch, no retrace."""
    layer = L.RandomInvert(p=0.0, seed=0)
    inputs = keras.Input((4, 4, 1))
    x = layer(inputs)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, outputs)
    model.compile(loss="mse", optimizer="sgd", jit_compile=True)
    x = np.zeros((8, 4, 4, 1), np.float32)
    y = np.zeros((8, 1), np.float32)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    loss_off = model.evaluate(x, y, verbose=0)  # evaluate: no augmentation
    history = []

    class Switch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            history.append(float(logs["loss"]))
            layer.p = 1.0

    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[Switch()])
    assert loss_off == 0.0
    # the logged loss is the epoch's running mean: (0 + 255^2) / 2 after the second batch
    assert history[0] == 0.0 and history[1] == pytest.approx(255.0**2 / 2)
    assert model.train_function is not None
    assert _traces(layer) <= 2  # once for the symbolic build, once in the train step


def test_live_range_is_a_runtime_parameter_under_xla():
    layer = L.RandomAffine(rotation=0.123, seed=0)
    fn = tf.function(layer._augment_batch, jit_compile=True)
    hlo = fn.experimental_get_compiler_ir({"images": IMAGES},
                                          tf.constant([1, 2], tf.int64))(stage="hlo")
    entry = next(line for line in hlo.splitlines() if "entry_computation_layout" in line)
    assert entry.count("f32[2]") >= 7, entry[-300:]  # the seven ranges are inputs, not constants


def test_policy_swap_same_shape_is_fast_and_live():
    layer = L.AutoAugment("cifar10", ops="all", seed=0)
    out1 = layer(IMAGES)
    traces = _traces(layer)
    base = layer.policy
    rng = np.random.default_rng(0)
    names = sorted(set(n for n in L.AutoAugment("imagenet").op_names if n != "Identity"))
    subs = [[(str(rng.choice(names)), float(rng.uniform()), int(rng.integers(10)))
             for _ in sub] for sub in base.sub_policies]
    new = Policy.from_table(subs, name="random")
    start = time.perf_counter()
    layer.policy = new
    swap = time.perf_counter() - start
    out2 = layer(IMAGES)
    assert _traces(layer) == traces
    assert layer.policy is new
    assert not np.array_equal(out1.numpy(), out2.numpy())
    assert swap < 0.05  # in practice well under 10 ms; a loose bound for a loaded CI machine
    # the swapped layer equals a fresh layer built with that policy (same seed and key)
    fresh = L.AutoAugment(new, ops="all", seed=0)
    key = tf.constant([3, 4], tf.int64)
    np.testing.assert_allclose(layer.augment({"images": IMAGES}, key)["images"],
                               fresh.augment({"images": IMAGES}, key)["images"], atol=1e-4)


def test_policy_swap_errors():
    layer = L.AutoAugment("cifar10")
    with pytest.raises(ValueError, match="shape"):
        layer.policy = Policy.from_table([[("Rotate", 0.5, 3)]])
    with pytest.raises(ValueError, match="outside this layer's ops"):
        layer.policy = "imagenet"  # uses ops cifar10's layer was not built with
    wide = L.TrivialAugmentWide()
    assert wide.space == "wide"


def test_settings_that_shape_the_graph_are_frozen_after_the_first_call():
    layer = L.RandomAffine(rotation=0.1, interpolation="bilinear")
    layer.interpolation = "nearest"  # before the first call: still a plain setting
    layer(IMAGES)
    with pytest.raises(AttributeError, match="interpolation is fixed"):
        layer.interpolation = "bilinear"
    layer.rotation = 0.2  # live
    layer.trainable = False


@pytest.mark.parametrize("assign, error", [
    (lambda l: setattr(l, "p", 1.5), "p must be a probability"),
    (lambda l: setattr(l, "strength", -0.1), "strength must be a number in"),
    (lambda l: setattr(l, "rotation", (0.3, 0.1)), "rotation must be"),
])
def test_live_values_are_validated(assign, error):
    with pytest.raises(ValueError, match=error):
        assign(L.RandomAffine(rotation=0.1))


def test_structural_limits_raise():
    jitter = L.RandomColorJitter((0, 255), brightness_factor=0.2)
    with pytest.raises(ValueError, match="hue_factor was None"):
        jitter.hue_factor = 0.1
    blur = L.RandomGaussianBlur(sigma=(0.1, 1.0))
    with pytest.raises(ValueError, match="kernel_size"):
        blur.sigma = (0.1, 3.0)
    with pytest.raises(ValueError, match="magnitude_max"):
        L.RandAugment(2, 5, magnitude_max=6).magnitude = 7


def test_preset_aliases_are_live():
    layer = L.RandomRotation(0.0, seed=0)
    assert np.allclose(layer(IMAGES), IMAGES)
    layer.factor = 0.25
    assert layer.rotation == (-0.25, 0.25)
    assert not np.allclose(layer(IMAGES), IMAGES)
    with pytest.raises(ValueError, match="factor"):
        layer.factor = "big"
    zoom = L.RandomZoom(0.2)
    zoom.width_factor = 0.1
    assert zoom.zoom_x == (-0.1, 0.1)
    assert zoom.get_config()["width_factor"] == (-0.1, 0.1)


def test_config_round_trip_keeps_live_values():
    layer = L.RandomBrightness(0.2, p=0.7, strength=0.5)
    layer.factor = (0.1, 0.3)
    clone = L.RandomBrightness.from_config(layer.get_config())
    assert (clone.factor, clone.p, clone.strength) == ((0.1, 0.3), 0.7, 0.5)
    assert layer.weights == []  # live state is not a Keras weight
