"""finetune with a user's keras.Model backbone: blocks from its graph, preprocessing, weights,
input shape, BatchNorm kept frozen (also inside composite layers), cloning (the user's model is
never modified), fine_tune on digits, and the errors for models without a usable graph."""
import keras
import numpy as np
import pytest

from finetune import backbone_from_model, estimate_similarity, fine_tune, plan
from finetune.digits_backbone import digits_cnn
from finetune.plan import compile_for_phase

SHAPE = (32, 32, 3)


def _cnn(name="user_cnn", top=False, input_shape=SHAPE):
    """A plain functional CNN: three stages of conv-BN-ReLU x2 (32, 64, 128 filters), max pooling
    between them; the registry's DigitsCNN04 architecture, used here as a user's own model."""
    model = digits_cnn(include_top=top, input_shape=input_shape)
    return keras.Model(model.inputs[0], model.outputs[0], name=name)


@pytest.fixture(scope="module")
def pretrained(digits):
    """The CNN trained briefly on the train split's digits 0-4, then cut at its feature map: how a
    user hands over their own classifier (the model without its top)."""
    from keras_aug.data import dataset_to_numpy

    images, labels = dataset_to_numpy(digits.train)
    keep = labels < 5
    keras.utils.set_random_seed(0)
    classifier = _cnn(top=True)
    classifier.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    scaled = np.repeat(images[keep], 3, axis=-1).astype("float32") / 127.5 - 1.0  # "tf" convention
    classifier.fit(scaled, labels[keep], batch_size=32, epochs=3, verbose=0)
    return keras.Model(classifier.input, classifier.get_layer("stage3_relu2").output, name="user_cnn")


def _bn_stats(layers):
    return [(layer.moving_mean.numpy().copy(), layer.moving_variance.numpy().copy())
            for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------ blocks, explain, cloning


def test_blocks_found_by_structure_and_explained():
    model = _cnn()
    p = plan(model, 100, 10, 0.9)
    assert p.backbone == "user_cnn" and p.backbone_model is model
    assert p.block_names == ["block1(stage1_relu2)", "block2(stage2_relu2)", "block3(stage3_relu2)"]
    blocks = p.new_backbone().blocks
    assert blocks[0].layers[:2] == ["input", "stage1_conv1"]  # the input joins block1
    assert blocks[1].layers[0] == "stage1_pool"  # a block ends before the resolution drops
    assert [b.output_shape for b in blocks] == [(32, 32, 32), (16, 16, 64), (8, 8, 128)]
    assert p.input_shape == SHAPE and p.weights is None and p.preprocess == "built-in"
    text = p.explain(print_it=False)
    assert text.startswith("Fine-tuning plan for user_cnn (your keras.Model, its own weights, "
                           "preprocess='built-in', blocks found in its graph, input 32x32)")
    assert "quadrant SMALL+SIMILAR" in text and "head attaches after block3(stage3_relu2)" in text
    assert "BatchNorm: kept in inference mode" in text


def test_model_is_cloned_never_modified_and_never_rebuilt_from_its_name():
    # A name that is also a registry name: the plan must still use this model, not the registry's.
    model = _cnn(name="DigitsCNN04")
    for v in model.weights:
        v.assign(np.random.default_rng(0).normal(size=v.shape).astype("float32"))
    before = model.get_weights()
    p = plan(model, 100, 10, 0.9)
    first, second = p.build_model(), p.build_model()
    for built in (first, second):
        trunk = built.kaug_backbone.model
        assert trunk is not model and trunk.name == "DigitsCNN04"
        _assert_same(trunk.get_weights(), before)
    shared = {id(v) for v in first.weights} & {id(v) for v in second.weights}
    assert not shared  # two models from one plan never share (fine-tuned) weights
    assert not ({id(v) for v in model.weights} & {id(v) for v in first.weights})
    assert all(layer.trainable for layer in model.layers)  # freezing happened on the clones
    _assert_same(model.get_weights(), before)
    with pytest.raises(TypeError, match="came from a keras.Model, not the registry"):
        first.kaug_backbone.spec.constructor(weights=None)


def test_sequential_model_and_unit_preprocessing():
    model = keras.Sequential(
        [keras.Input(SHAPE)]
        + [layer for f in (8, 16) for layer in (keras.layers.Conv2D(f, 3, padding="same"),
                                               keras.layers.BatchNormalization(),
                                               keras.layers.ReLU(), keras.layers.MaxPooling2D())]
        + [keras.layers.Conv2D(32, 3, padding="same")],
        name="seq_cnn",
    )
    p = plan(model, 100, 10, 0.2, preprocess="unit")
    assert len(p.block_names) == 3 and p.quadrant == "small+different" and p.cut_block == 1
    built = p.build_model((32, 32, 1))
    assert built.get_layer("preprocess_unit").convention == "unit"
    images = np.full((2, 32, 32, 1), 255.0, "float32")
    scaled = built.get_layer("preprocess_unit")(images)
    assert scaled.shape == (2, 32, 32, 3) and float(np.max(scaled)) == 1.0
    assert built.predict(images, verbose=0).shape == (2, 10)


def test_weights_file_loaded_into_the_clone(tmp_path):
    source = _cnn()
    for v in source.weights:
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype("float32"))
    path = str(tmp_path / "mine.weights.h5")
    source.save_weights(path)
    model = _cnn()
    before = model.get_weights()
    p = plan(model, 100, 10, 0.9, weights=path)
    assert p.weights == path and f"weights from {path!r}" in p.explain(print_it=False)
    _assert_same(p.build_model().kaug_backbone.model.get_weights(), source.get_weights())
    _assert_same(model.get_weights(), before)
    other = str(tmp_path / "other.weights.h5")
    keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(2, 3)]).save_weights(other)
    with pytest.raises(ValueError, match="does not match backbone user_cnn"):
        plan(model, 100, 10, weights=other)


def test_undefined_input_size_is_fixed_by_input_shape():
    model = _cnn(input_shape=(None, None, 3))
    p = plan(model, 100, 10, input_shape=(48, 48, 3))
    assert p.input_shape == (48, 48, 3)
    assert [b.output_shape for b in p.new_backbone().blocks][-1] == (12, 12, 128)
    with pytest.raises(ValueError, match=r"undefined size: pass input_shape=\(H, W, 3\)"):
        plan(model, 100, 10)


# ------------------------------------------------------------------ training, BatchNorm


@pytest.mark.slow
def test_fine_tune_learns_on_digits_and_batchnorm_never_drifts(pretrained, digits):
    from keras_aug.data import few_shot

    stats, weights = _bn_stats(pretrained.layers), pretrained.get_weights()
    train = few_shot(digits.train, 10, seed=0)
    backbone = backbone_from_model(pretrained, preprocess="tf")
    similarity = estimate_similarity(backbone, train)
    inverted = estimate_similarity(backbone, train.map(lambda image, label: 255 - image))
    assert 0.0 <= inverted < similarity <= 1.0, (inverted, similarity)
    # large_per_class=5 makes 10/class "large": the fine-tune phase then unfreezes blocks 2-3.
    p = plan(pretrained, 100, 10, similarity, preprocess="tf", large_per_class=5,
             finetune_epochs=3)
    assert [ph.trainable_blocks for ph in p.phases] == [(), (1, 2)]
    result = fine_tune(p, train, seed=0, verbose=0, restore_best=False)
    assert result.history["phase"] == ["head"] * 30 + ["fine-tune"] * 3
    _, accuracy = result.model.evaluate(digits.test.batch(256), verbose=0)
    assert accuracy > 0.6, accuracy  # chance is 0.1
    trunk = result.model.kaug_backbone.model
    _assert_same(_bn_stats(trunk.layers), stats)  # BN in the unfrozen blocks used, never updated
    assert not np.allclose(trunk.get_layer("stage3_conv1").kernel.numpy(),
                           pretrained.get_layer("stage3_conv1").kernel.numpy())
    np.testing.assert_array_equal(trunk.get_layer("stage1_conv1").kernel.numpy(),
                                  pretrained.get_layer("stage1_conv1").kernel.numpy())
    _assert_same(pretrained.get_weights(), weights)  # the user's model is untouched


@keras.saving.register_keras_serializable(package="kaug_tests")
class ConvBN(keras.layers.Layer):
    """A composite layer: its BatchNorm is not a node of the model's graph."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = keras.layers.Conv2D(filters, 3, padding="same", name="conv")
        self.bn = keras.layers.BatchNormalization(name="bn")

    def call(self, x, training=None):
        return keras.ops.relu(self.bn(self.conv(x), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def test_batchnorm_inside_composite_layers_stays_frozen():
    inputs = keras.Input(SHAPE)
    x = ConvBN(8, name="unit1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = ConvBN(8, name="unit2")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = ConvBN(8, name="unit3")(x)
    p = plan(keras.Model(inputs, x, name="composite"), 600, 10, 0.9, finetune_lr=1e-2)
    assert p.phases[1].trainable_blocks == (1, 2)
    model = p.build_model()
    compile_for_phase(model, p.phases[1])
    unit3 = model.kaug_backbone.model.get_layer("unit3")
    assert unit3.trainable and unit3.conv.trainable and not unit3.bn.trainable
    stats, kernel = _bn_stats([unit3.bn]), unit3.conv.kernel.numpy().copy()
    images = np.random.default_rng(0).uniform(0, 255, (8, *SHAPE)).astype("float32")
    model.fit(images, np.arange(8) % 10, batch_size=8, epochs=1, verbose=0)
    _assert_same(_bn_stats([unit3.bn]), stats)
    assert not np.allclose(unit3.conv.kernel.numpy(), kernel)
    with pytest.raises(ValueError, match=r"bn_policy='adapt' cannot reach the BatchNorm layers "
                                         r"inside composite layers of composite \(unit1/bn, "):
        plan(p.backbone_model, 600, 10, bn_policy="adapt")


# ------------------------------------------------------------------ models without a usable graph


def test_nested_model_names_the_inner_model_to_pass():
    base = _cnn(name="base")
    outer_in = keras.Input(SHAPE)
    nested = keras.Model(outer_in, keras.layers.Conv2D(4, 1)(base(outer_in)), name="wrapper")
    with pytest.raises(ValueError, match=r"contains nested model\(s\) \['base'\].*"
                                         r"plan\(model.get_layer\('base'\)"):
        plan(nested, 100, 10)
    with pytest.raises(ValueError, match="nested model"):
        plan(keras.Sequential([base, keras.layers.Conv2D(4, 1)]), 100, 10)
    p = plan(nested.get_layer("base"), 100, 10)  # what the message says to do
    assert len(p.block_names) == 3


def test_subclassed_and_unusable_models_raise_clearly():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.conv = keras.layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, *SHAPE), "float32"))
    with pytest.raises(TypeError, match="subclassed keras.Model.*no layer graph to split"):
        plan(net, 100, 10)
    with pytest.raises(ValueError, match=r"outputs shape \(None, 5\).*without its classification "
                                         r"top, e.g. keras.Model\(model.input, "
                                         r"model.get_layer\('stage3_relu2'\)"):
        plan(_cnn(top=True), 100, 10)
    with pytest.raises(ValueError, match=r"Sequential backbone 'late' has no input shape yet"):
        plan(keras.Sequential([keras.layers.Conv2D(4, 3)], name="late"), 100, 10)
    gray = _cnn(input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match=r"takes input \(32, 32, 1\); it must take \(H, W, 3\)"):
        plan(gray, 100, 10)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(weights="imagenet"), ValueError, "weights='imagenet' does not apply to a keras.Model"),
        (dict(weights="/nope.weights.h5"), ValueError, "nor an existing weights file"),
        (dict(weights=3), TypeError, "weights must be 'imagenet', None or a file path"),
        (dict(input_shape=(64, 64, 3)), ValueError,
         r"input_shape=\(64, 64, 3\) does not match backbone 'user_cnn'\'s input \(32, 32, 3\)"),
        (dict(preprocess="bgr"), ValueError, "preprocess must be one of"),
        (dict(alpha=0.5), TypeError, r"backbone keyword arguments \['alpha'\] only apply to registry"),
    ],
)
def test_bad_arguments_with_a_model(kwargs, error, match):
    with pytest.raises(error, match=match):
        plan(_cnn(), 100, 10, **kwargs)


def test_bad_backbone_type_and_preprocess_for_a_registry_name():
    with pytest.raises(TypeError, match="backbone must be a registry name \\(str\\) or a keras.Model"):
        plan(42, 100, 10)
    with pytest.raises(ValueError, match="preprocess='caffe' does not apply to registry backbone "
                                         "DigitsCNN04, which expects 'tf'"):
        plan("DigitsCNN04", 100, 10, preprocess="caffe", input_shape=SHAPE)
    assert plan("DigitsCNN04", 100, 10, preprocess="tf", input_shape=SHAPE).preprocess == "tf"
    with pytest.raises(TypeError, match="model must be a keras.Model, got str"):
        backbone_from_model("VGG16")
