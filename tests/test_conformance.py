"""Every layer in keras_aug.layers.__all__ keeps the same contract: `.keras` round trip in a fresh
process, identity at training=False, seed determinism, float32 / uint8 in = out, and XLA equal to
the plain graph. A new layer is checked by being exported; only a layer whose constructor needs
arguments goes into tests/layer_cases.py.

Also: `import keras_aug` / `import gan` / `import finetune` register every serializable class of
their package, so saved files load in a fresh process after those imports alone.
"""
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from layer_cases import ARGS, COMPOSITES, CROPS, EXACT_CROPS, K, NOT_LAYERS, layer_names, make_layer

B, S = 4, 16  # batch, image side

NAMES = layer_names()
make = make_layer


def batch(dtype="float32", seed=0):
    """Images in the default (0, 255) range, plus integer labels for the mixing layers."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (B, S, S, 3)).astype(dtype)
    return images, (np.arange(B) % K).astype("int64")


def call(layer, images, labels, **kwargs):
    """The layer's images output (mixing layers take and return (images, labels))."""
    if getattr(layer, "mixes_labels", False):
        return layer((images, labels), **kwargs)[0]
    return layer(images, **kwargs)


def plain(layer):
    """The same layer without XLA (its apply step as a plain graph)."""
    layer.jit_compile = False
    return layer


def test_every_export_is_checked():
    assert set(NOT_LAYERS) <= set(L.__all__)
    unknown = (set(ARGS) | set(COMPOSITES)) - set(NAMES)
    assert not unknown, f"ARGS names layers that are not exported: {unknown}"


@pytest.mark.parametrize("name", NAMES)
def test_identity_at_inference(name):
    images, labels = batch()
    out = np.asarray(call(make(name, seed=0), images, labels, training=False))
    if name not in CROPS:
        np.testing.assert_array_equal(out, images)
        return
    h, w = CROPS[name]
    assert out.shape == (B, h, w, 3)
    other_seed = np.asarray(call(make(name, seed=1), images, labels, training=False))
    np.testing.assert_array_equal(out, other_seed)
    if name in EXACT_CROPS:
        top, left = (S - h) // 2, (S - w) // 2
        np.testing.assert_array_equal(out, images[:, top:top + h, left:left + w])


@pytest.mark.parametrize("name", NAMES)
def test_seed_determinism_and_dtypes(name):
    """The same seed repeats the whole sequence of draws; float32 and uint8 come back as they
    went in, finite and within value_range."""
    first, second = plain(make(name, seed=3)), plain(make(name, seed=3))
    images, labels = batch()
    for _ in range(2):  # the whole sequence repeats, not only the first call
        a, b = call(first, images, labels), call(second, images, labels)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for out, dtype in ((a, "float32"), (call(first, *batch("uint8")), "uint8")):
        assert out.dtype == tf.as_dtype(dtype), f"{name}: {dtype} in, {out.dtype.name} out"
        out = np.asarray(out)
        assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 255


@pytest.mark.parametrize("name", [n for n in NAMES if getattr(L, n).jit_compile])
def test_xla_equals_plain_graph(name):
    images, labels = batch()
    compiled, graph = make(name, seed=5), plain(make(name, seed=5))
    # Rounding ops (posterize, equalize) may land on the other side of a step from float noise:
    # compare per pixel with a tolerance and allow a sliver of pixels to differ.
    a, b = np.asarray(call(compiled, images, labels)), np.asarray(call(graph, images, labels))
    assert a.shape == b.shape
    assert np.mean(np.abs(a - b) > 1e-2) < 0.01, f"{name}: max diff {np.abs(a - b).max()}"


# ------------------------------------------------------------------ saving, fresh process

# Run in a fresh interpreter: load every saved model after ONLY `import keras, <package>`, check
# its config and its output, then import every module of the package and check that none
# registers a class that the package's import did not.
_FRESH = """
import importlib, json, pkgutil, sys
import numpy as np
import keras

cases = json.load(open(sys.argv[1]))
for package in ("keras_aug", "gan", "finetune"):
    importlib.import_module(package)
    registered = set(keras.saving.get_custom_objects())
    for case in (c for c in cases if c["package"] == package):
        model = keras.models.load_model(case["path"])
        got = [keras.saving.serialize_keras_object(layer) for layer in model.layers]
        assert json.loads(json.dumps(got)) == case["layers"], case["path"]
        x, expected = (list(np.load(case[k]).values()) for k in ("x", "y"))
        out = model.predict(x if len(x) > 1 else x[0], verbose=0)
        for got, want in zip(out if isinstance(out, list) else [out], expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5, err_msg=case["path"])
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
    late = set(keras.saving.get_custom_objects()) - registered
    assert not late, f"import {package} did not register {sorted(late)}"
print("FRESH OK")
"""


def _save(tmp_path, package: str, name: str, model: keras.Model, x) -> dict:
    """Save `model`, its input(s) `x` and its output(s) for the fresh process to compare."""
    path, x_path, y_path = (str(tmp_path / f"{name}{end}") for end in (".keras", "_x.npz", "_y.npz"))
    model.save(path)
    y = model.predict(x, verbose=0)
    np.savez(x_path, *(x if isinstance(x, list) else [x]))
    np.savez(y_path, *(y if isinstance(y, list) else [y]))
    layers = [keras.saving.serialize_keras_object(layer) for layer in model.layers]
    return {"package": package, "path": path, "x": x_path, "y": y_path,
            "layers": json.loads(json.dumps(layers))}


def _saved_with_arguments() -> list:
    """Layers with non-default arguments, so that the round trip also covers arguments that the
    defaults leave out of sight (tuples, modes, fills, op subsets)."""
    from keras_aug.policies.registry import RANDAUGMENT_OPS

    return [
        L.RandomFlip("vertical", p=0.3, seed=4),
        L.RandomAffine(rotation=0.05, translate_x=0.1, zoom_y=0.1, seed=0),
        L.RandomRotation((-0.1, 0.2), fill_mode="constant", fill_value=3.0),
        L.RandomColorJitter(brightness_factor=0.3, saturation_factor=(0.2, 0.8), seed=1),
        L.RandomSolarize(addition_factor=0.2, threshold_factor=(0.3, 0.9), seed=2),
        L.RandomErasing(scale=(0.1, 0.2), mode="random", max_boxes=2, seed=1),
        L.RandomCutout(size=(0.2, 0.4), fill_value=(1.0, 2.0, 3.0), seed=2),
        L.GridMask(ratio=0.4, unit=(0.25, 0.5), seed=3),
        L.MixUp(alpha=0.4, num_classes=5, seed=1),
        L.CutMix(alpha=0.7, label_smoothing=0.1, seed=2),
        L.RandomMixing(mixup_alpha=0.0, cutmix_alpha=1.0, prob=0.8, num_classes=3),
        L.RandAugment(3, 5, ops=RANDAUGMENT_OPS[:5], seed=1),
        L.AugMix(2, 2, 1, 0.5, all_ops=False, fill_value=128),
        L.AutoAugment("svhn"),
    ]


def _library_models() -> list[tuple[str, str, keras.Model, np.ndarray]]:
    """(package, name, model, input) for every layer and the other serializable classes."""
    from finetune.plan import FeatureStandardization
    from finetune.registry import Preprocess
    from gan.models import GANConfig, build_discriminator, build_generator
    from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy
    from keras_aug.policies import JSDConsistencyLoss

    images, _ = batch()
    cases = []
    for name in NAMES:
        model = keras.Sequential([keras.Input((S, S, 3)), make(name, seed=2)], name=name)
        cases.append(("keras_aug", name, model, images))
    for i, layer in enumerate(_saved_with_arguments()):
        name = f"{type(layer).__name__}_args{i}"
        cases.append(("keras_aug", name, keras.Sequential([keras.Input((S, S, 3)), layer]), images))
    classifier = keras.Sequential([keras.Input((S, S, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(K)], name="classifier")
    classifier.compile("adam", loss=LabelCrossentropy(), metrics=[LabelAccuracy()])
    cases.append(("keras_aug", "labels_compiled", classifier, images))
    jsd = keras.Sequential([keras.Input((S, S, 3)), keras.layers.Flatten(), keras.layers.Dense(K)])
    jsd.compile("adam", loss=JSDConsistencyLoss())
    cases.append(("keras_aug", "jsd_compiled", jsd, images))

    config = GANConfig(image_shape=(S, S, 1), num_classes=3, g_width=8, d_width=8, latent_dim=4)
    noise, ids = np.zeros((2, 4), "float32"), np.array([0, 2], "int32")
    cases.append(("gan", "generator", build_generator(config), [noise, ids]))
    cases.append(("gan", "discriminator", build_discriminator(config),
                  [np.zeros((2, S, S, 1), "float32"), ids]))

    features = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    standardize = keras.Sequential([keras.Input((3,)), FeatureStandardization()])
    standardize.layers[0].set_statistics(features)
    cases.append(("finetune", "standardization", standardize, features))
    cases.append(("finetune", "preprocess",
                  keras.Sequential([keras.Input((S, S, 3)), Preprocess("tf")]), images))
    return cases


@pytest.mark.slow
def test_keras_files_load_in_a_fresh_process_after_importing_the_package(tmp_path):
    cases = [_save(tmp_path, *case) for case in _library_models()]
    with open(tmp_path / "cases.json", "w") as f:
        json.dump(cases, f)
    result = subprocess.run([sys.executable, "-c", _FRESH, str(tmp_path / "cases.json")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "FRESH OK" in result.stdout, result.stderr[-3000:]
