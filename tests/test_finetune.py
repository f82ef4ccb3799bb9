"""finetune: registry, preprocessing, similarity, plan quadrants, BatchNorm, per-group LRs,
weights loading, phased training, CLI, demo row, bad input. Offline; tiny images."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from finetune import (
    REGISTRY,
    Preprocess,
    build_backbone,
    estimate_similarity,
    fine_tune,
    get_spec,
    list_backbones,
    plan,
)
from finetune.plan import compile_for_phase

SHAPE = (32, 32, 3)


def _applications():
    return sorted(n for n in dir(keras.applications)
                  if n[0].isupper() and callable(getattr(keras.applications, n)))


@pytest.fixture(scope="module")
def small_digits(digits):
    from keras_aug.data import few_shot

    return few_shot(digits.train, 3, seed=0)  # 30 images, 10 classes


def _digits_plan(per_class, similarity, **kw):
    kw.setdefault("head_epochs", 1)
    kw.setdefault("finetune_epochs", 1)
    return plan("DigitsCNN04", per_class * 10, 10, similarity, input_shape=SHAPE, **kw)


# ------------------------------------------------------------------ registry


def test_registry_covers_every_keras_application():
    apps = _applications()
    assert len(apps) >= 38
    missing = [a for a in apps if a not in REGISTRY]
    assert not missing, f"keras.applications models missing from the registry: {missing}"
    assert "DigitsCNN04" in list_backbones()
    for name in apps:
        spec = REGISTRY[name]
        assert spec.preprocess in ("caffe", "tf", "torch", "built-in")
        assert spec.min_size in (32, 71, 75) and spec.default_size >= spec.min_size
    assert REGISTRY["Xception"].min_size == 71 and REGISTRY["InceptionV3"].min_size == 75


@pytest.mark.parametrize("name", _applications())
def test_preprocess_convention_matches_keras_preprocess_input(name):
    """Preprocess(spec.preprocess) == keras.applications.<family>.preprocess_input."""
    spec = REGISTRY[name]
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = getattr(keras.applications, spec.family).preprocess_input(x.copy())
    np.testing.assert_allclose(np.asarray(Preprocess(spec.preprocess)(x)), expected, atol=1e-4)


def test_preprocess_repeats_grayscale_and_rejects_unknown_convention():
    x = np.arange(2 * 4 * 4, dtype="float32").reshape(2, 4, 4, 1)
    y = np.asarray(Preprocess("tf")(x))
    assert y.shape == (2, 4, 4, 3)
    np.testing.assert_allclose(y[..., 0], y[..., 2])
    np.testing.assert_allclose(y[..., 0], x[..., 0] / 127.5 - 1)
    with pytest.raises(ValueError, match="convention must be one of.*'jax'"):
        Preprocess("jax")


@pytest.mark.parametrize("name", ["VGG16", "MobileNetV2", "ResNet50V2", "MobileNetV3Small"])
def test_build_at_minimum_size_and_blocks_are_whole_cuts(name):
    """Representative families (tests/test_finetune_registry_all.py builds every model)."""
    check_backbone_blocks(name)


def check_backbone_blocks(name):
    spec = get_spec(name)
    size = spec.min_size
    backbone = build_backbone(name, weights=None, input_shape=(size, size, 3))
    blocks = backbone.blocks
    assert len(blocks) >= (2 if name.startswith("NASNet") else 4), [b.name for b in blocks]
    ops = [op.name for op in backbone.model.operations]
    assert [n for b in blocks for n in b.layers] == ops  # a partition, in graph order
    areas = [b.output_shape[0] * b.output_shape[1] for b in blocks]
    assert areas == sorted(areas, reverse=True)  # each block ends before a downsampling
    for k in (0, len(blocks) // 2):
        extractor = backbone.feature_extractor(k)
        assert tuple(extractor.output.shape[1:]) == blocks[k].output_shape
    assert backbone.feature_extractor(len(blocks) - 1).output.shape == backbone.model.output.shape


def test_vgg16_blocks_end_where_expected():
    backbone = build_backbone("VGG16", weights=None, input_shape=SHAPE)
    assert [b.end for b in backbone.blocks] == [
        "block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_pool"]


def test_local_weights_path_loading(tmp_path):
    a = build_backbone("DigitsCNN04", weights=None, input_shape=SHAPE)
    for v in a.model.weights:
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype("float32"))
    path = str(tmp_path / "mine.weights.h5")
    a.model.save_weights(path)
    b = build_backbone("DigitsCNN04", weights=path, input_shape=SHAPE)
    for x, y in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(x, y)
    # a keras.applications model through the same path
    m = build_backbone("MobileNet", weights=None, input_shape=SHAPE, alpha=0.25)
    m.model.layers[1].kernel.assign(np.full(m.model.layers[1].kernel.shape, 0.5, "float32"))
    path = str(tmp_path / "mobilenet.weights.h5")
    m.model.save_weights(path)
    m2 = build_backbone("MobileNet", weights=path, input_shape=SHAPE, alpha=0.25)
    np.testing.assert_array_equal(m2.model.layers[1].kernel.numpy(), 0.5)
    # "imagenet" on a custom backbone loads its shipped pretrained file
    shipped = build_backbone("DigitsCNN04", input_shape=SHAPE)
    assert shipped.weights.endswith("digits04_cnn.weights.h5")
    assert not np.allclose(shipped.model.get_weights()[0], a.model.get_weights()[0])


def test_bad_backbone_inputs(tmp_path):
    with pytest.raises(ValueError, match="Unknown backbone 'MobileNetV9'.*Did you mean.*'MobileNetV2'"):
        get_spec("MobileNetV9")
    with pytest.raises(ValueError, match=r"\(64, 64, 3\) is smaller than Xception's minimum input size 71x71"):
        build_backbone("Xception", weights=None, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="input_shape must be \\(height, width, 3\\)"):
        build_backbone("VGG16", weights=None, input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match="neither 'imagenet', None, nor an existing weights file"):
        build_backbone("VGG16", weights=str(tmp_path / "nope.weights.h5"), input_shape=SHAPE)
    path = str(tmp_path / "digits.weights.h5")
    build_backbone("DigitsCNN04", weights=None, input_shape=SHAPE).model.save_weights(path)
    with pytest.raises(ValueError, match="does not match backbone VGG16"):
        build_backbone("VGG16", weights=path, input_shape=SHAPE)


# ------------------------------------------------------------------ similarity


def test_batchnorm_similarity_orders_domains(digits):
    backbone = build_backbone("DigitsCNN04", input_shape=SHAPE)
    images = np.stack([x for x, _ in digits.test.take(200).as_numpy_iterator()])
    labels = np.asarray([y for _, y in digits.test.take(200).as_numpy_iterator()])
    seen = tf.data.Dataset.from_tensor_slices(images[labels < 5][:32])
    unseen = tf.data.Dataset.from_tensor_slices((images[labels >= 5][:32], labels[labels >= 5][:32]))
    inverted = tf.data.Dataset.from_tensor_slices(255 - images[:32])
    noise = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).integers(0, 256, (32, 32, 32, 1)).astype("uint8")).batch(16)
    scores = [estimate_similarity(backbone, ds) for ds in (seen, unseen, inverted, noise)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] > scores[1] > 0.5 > scores[2] > scores[3], scores
    report = estimate_similarity(backbone, seen, details=True)
    assert report.method == "batchnorm" and report.images == len(images[labels < 5][:32])


def test_probe_similarity_and_method_errors(small_digits):
    backbone = build_backbone("DigitsCNN04", input_shape=SHAPE)
    report = estimate_similarity(backbone, small_digits, method="probe", details=True,
                                 probe_repeats=1)  # the default 4 repeats: ~4x the (CPU) fits
    assert report.method == "probe" and 0.0 <= report.score <= 1.0 and len(report.per_layer) == 2
    with pytest.raises(ValueError, match="method='probe' needs labels"):
        estimate_similarity(backbone, small_digits.map(lambda x, y: x), method="probe")
    with pytest.raises(ValueError, match="method must be one of"):
        estimate_similarity(backbone, small_digits, method="kl")
    with pytest.raises(ValueError, match="probe_repeats must be an integer >= 1, got 0"):
        estimate_similarity(backbone, small_digits, method="probe", probe_repeats=0)
    vgg = build_backbone("VGG16", weights=None, input_shape=SHAPE)
    with pytest.raises(ValueError, match="VGG16 has no BatchNormalization layer; use method='probe'"):
        estimate_similarity(vgg, small_digits, method="batchnorm")


# ------------------------------------------------------------------ plan


@pytest.mark.parametrize(
    "per_class, similarity, quadrant, cut, phases, trained",
    [
        (10, 0.9, "small+similar", 2, ["head"], ()),
        (10, 0.2, "small+different", 1, ["head"], ()),
        (60, 0.9, "large+similar", 2, ["head", "fine-tune"], (1, 2)),
        (60, 0.2, "large+different", 1, ["head", "fine-tune"], (0, 1)),
        (50, 0.5, "large+similar", 2, ["head", "fine-tune"], (1, 2)),  # thresholds inclusive
        # small data: a near tie (below similar_threshold + small_tie_margin) -> earlier cut
        (10, 0.5, "small+different", 1, ["head"], ()),
        (10, 0.549, "small+different", 1, ["head"], ()),
        (10, 0.55, "small+similar", 2, ["head"], ()),
        (10, None, "small+similar", 2, ["head"], ()),  # unknown similarity -> assumed similar
    ],
)
def test_plan_quadrants(per_class, similarity, quadrant, cut, phases, trained):
    p = _digits_plan(per_class, similarity)
    assert p.quadrant == quadrant and p.cut_block == cut
    assert [ph.name for ph in p.phases] == phases
    assert p.phases[-1].trainable_blocks == trained
    assert p.frozen_blocks == tuple(b for b in range(cut + 1) if b not in trained)
    text = p.explain(print_it=False)
    assert f"quadrant {quadrant.upper()}" in text
    assert "large_per_class=50" in text and "similar_threshold=0.5" in text
    assert "BatchNorm: kept in inference mode" in text
    assert ("different domain" in text) == quadrant.endswith("different")
    assert "small_tie_margin=0.05 for small data: ties go to the earlier cut" in text
    near_tie = per_class < 50 and similarity is not None and 0.5 <= similarity < 0.55
    assert ("near tie for small data: similarity" in text) == near_tie
    if similarity is None:
        assert "not given (assumed similar)" in text


def test_plan_learning_rates_and_explain_prints(capsys):
    p = _digits_plan(60, 0.9, finetune_lr=1e-3, block_lr_decay=0.1, bn_policy="adapt")
    assert p.phases[1].learning_rates == pytest.approx({"head": 1e-3, "block3": 1e-4, "block2": 1e-5})
    p.explain()
    out = capsys.readouterr().out
    assert "re-estimated once on the training data (AdaBN)" in out
    assert "block3 1.0e-04" in out


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(similarity=1.5), r"similarity must be a number in \[0, 1\] or None, got 1.5"),
        (dict(similarity=-0.1), r"similarity must be a number in \[0, 1\] or None, got -0.1"),
        (dict(dataset_size=0), "dataset_size must be an integer >= 1, got 0"),
        (dict(num_classes=1), "num_classes must be at least 2, got 1"),
        (dict(similar_threshold=2.0), r"similar_threshold must be in \[0, 1\], got 2.0"),
        (dict(small_tie_margin=-0.1), r"small_tie_margin must be in \[0, 1\], got -0.1"),
        (dict(bn_policy="train"), "bn_policy must be one of"),
        (dict(block_lr_decay=0.0), r"block_lr_decay must be in \(0, 1\]"),
        (dict(backbone="ResNet5O"), "Unknown backbone 'ResNet5O'"),
    ],
)
def test_plan_bad_input(kwargs, match):
    args = dict(backbone="DigitsCNN04", dataset_size=100, num_classes=10, similarity=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        plan(args.pop("backbone"), args.pop("dataset_size"), args.pop("num_classes"),
             args.pop("similarity"), input_shape=SHAPE, **args)


# ------------------------------------------------------------------ model, BN, per-group LRs


def _bn_layers(model):
    return [l for l in model.kaug_backbone.model.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_batchnorm_stays_in_inference_mode_after_unfreezing_and_groups_get_their_lrs():
    p = _digits_plan(60, 0.9, finetune_lr=1e-3, block_lr_decay=0.5)
    model = p.build_model((32, 32, 1))
    compile_for_phase(model, p.phases[1])
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.MultiOptimizer)
    backbone = model.kaug_backbone.model
    expected = {"stage3_conv1": 5e-4, "stage2_conv2": 2.5e-4, "head_logits": 1e-3}
    for layer_name, lr in expected.items():
        layer = backbone.get_layer(layer_name) if layer_name.startswith("stage") else model.head.get_layer(layer_name)
        chosen = optimizer._optimizer_map(layer.weights[0])
        assert float(chosen.learning_rate) == pytest.approx(lr), layer_name
    # frozen block1; unfrozen block2's conv trains but its BatchNorm stays frozen
    assert not backbone.get_layer("stage1_conv1").trainable
    assert backbone.get_layer("stage2_conv1").trainable
    assert not backbone.get_layer("stage2_bn1").trainable
    bns = _bn_layers(model)
    before_stats = [(b.moving_mean.numpy().copy(), b.moving_variance.numpy().copy()) for b in bns]
    before_kernel = backbone.get_layer("stage3_conv1").kernel.numpy().copy()
    before_frozen = backbone.get_layer("stage1_conv1").kernel.numpy().copy()
    x = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 1)).astype("float32")
    y = np.arange(8) % 10
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for b, (mean, var) in zip(bns, before_stats):
        np.testing.assert_array_equal(b.moving_mean.numpy(), mean)
        np.testing.assert_array_equal(b.moving_variance.numpy(), var)
    assert not np.allclose(backbone.get_layer("stage3_conv1").kernel.numpy(), before_kernel)
    np.testing.assert_array_equal(backbone.get_layer("stage1_conv1").kernel.numpy(), before_frozen)
    # every group's optimizer took the step
    assert all(int(o.iterations) == 1 for o in optimizer.optimizers)


def test_fine_tune_runs_phases_recompiles_and_checkpoints(tmp_path, small_digits, digits):
    p = _digits_plan(60, 0.9)  # two phases
    path = str(tmp_path / "best.weights.h5")
    optimizers = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            optimizers.append((type(self.model.optimizer).__name__,
                               len(self.model.trainable_variables)))

    val = digits.test.take(40)
    result = fine_tune(p, small_digits, val, checkpoint_path=path, seed=0, verbose=0,
                       callbacks=[Spy()])
    assert result.history["phase"] == ["head", "fine-tune"]
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "phase"}
    # recompiled between phases: a new optimizer, more trainable variables in phase 2
    assert [o[0] for o in optimizers] == ["Adam", "MultiOptimizer"]
    assert optimizers[1][1] > optimizers[0][1]
    assert os.path.isfile(path)
    assert result.best_value == pytest.approx(max(result.history["val_accuracy"]))
    # the best weights are restored into the returned model
    _, acc = result.model.evaluate(val.batch(40), verbose=0)
    assert acc == pytest.approx(result.best_value, abs=1e-6)


def test_fine_tune_restore_best_false_keeps_final_weights(small_digits, tmp_path):
    final = []

    class Last(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            final.append([w.copy() for w in self.model.get_weights()])

    p = _digits_plan(3, 0.9, head_epochs=4, head_lr=0.1)  # a large rate: the loss is not monotone
    path = str(tmp_path / "best.weights.h5")
    r = fine_tune(p, small_digits, None, cache_frozen_features=True, seed=1, verbose=0,
                  restore_best=False, checkpoint_path=path, callbacks=[Last()])
    for got, want in zip(r.model.head.get_weights(), final[-1]):
        np.testing.assert_array_equal(got, want)
    assert r.best_value == pytest.approx(min(r.history["loss"]))  # reported in the loss's sign
    assert os.path.isfile(path)


def test_cached_features_equal_uncached_head_phase(small_digits):
    """Caching the frozen front is exact: the head trained on cached features (dropout 0) equals
    the head trained through the whole model on the same batches."""
    outputs = []
    for cache in (False, True):
        p = _digits_plan(3, 0.9, head_epochs=2, head_dropout=0.0)
        r = fine_tune(p, small_digits.batch(10), None, cache_frozen_features=cache, seed=3, verbose=0,
                      jit_compile=False)
        outputs.append(r.model.head.get_layer("head_logits").kernel.numpy())
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)


def test_fine_tune_bad_input(small_digits):
    p = _digits_plan(3, 0.9)
    with pytest.raises(TypeError, match="model_or_plan must be a FinetunePlan"):
        fine_tune(keras.Sequential([keras.layers.Dense(2)]), small_digits)
    with pytest.raises(TypeError, match="train_ds must be a tf.data.Dataset"):
        fine_tune(p, np.zeros((4, 32, 32, 1)))
    with pytest.raises(ValueError, match="checkpoint_path must end with '.weights.h5'"):
        fine_tune(p, small_digits, checkpoint_path="best.h5")


# ------------------------------------------------------------------ CLI and demo row


def test_cli_end_to_end_and_errors(tmp_path, capsys):
    from kaug.cli import main

    code = main(["finetune", "--backbone", "DigitsCNN04", "--dataset", "digits", "--per-class", "3",
                 "--image-size", "32", "--head-epochs", "1", "--finetune-epochs", "1", "--val-fraction", "0.05",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "quadrant SMALL+SIMILAR" in out and "similarity (batchnorm" in out
    assert "test accuracy:" in out and os.path.isfile(tmp_path / "best.weights.h5")
    assert main(["finetune", "--backbone", "VGG61", "--dataset", "digits"]) == 2
    assert "Unknown backbone 'VGG61'" in capsys.readouterr().err
    assert main(["finetune", "--backbone", "DigitsCNN04", "--dataset", "digits",
                 "--similarity", "7", "--plan-only"]) == 2
    assert "similarity must be a number in [0, 1]" in capsys.readouterr().err


def test_demo_row_registered_and_runs(digits):
    from keras_aug.data import few_shot
    from kaug.demo import DemoConfig, DemoData, demo_rows
    from kaug.rows.finetune import ROW_NAME, run_finetune_row

    assert ROW_NAME in [r.name for r in demo_rows()]
    test = digits.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y))
    data = DemoData(few_shot(digits.train, 10, seed=0), test, 10, (32, 32, 1))
    accuracy, history = run_finetune_row(data, 0, DemoConfig.quick_config())
    assert accuracy > 0.5  # chance is 0.1
    assert "val_accuracy" not in history  # the test split never picks the epoch
    assert 0.0 <= history["similarity"][0] <= 1.0
