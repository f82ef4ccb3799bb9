"""Policies: registry magnitudes, ops vs PIL, fused order, per-sample draws, seeds, tables, JSON,
specs, XLA/tf.data/model use, AugMix + JSD loss, and errors."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

import keras_aug.layers as L
from keras_aug.policies import (
    AugMixViews,
    JSDConsistencyLoss,
    Policy,
    builtin_policy,
    from_spec,
    op_parameter,
    parse_rand_spec,
)
from keras_aug.policies.fused import apply_op_sequence
from keras_aug.policies.registry import OPS, RANDAUGMENT_OPS


@pytest.fixture(scope="module")
def photo():
    """A real 20x20 RGB photo crop (scikit-image's astronaut), uint8."""
    from skimage import data as skdata

    img = Image.fromarray(skdata.astronaut()[30:230, 150:350]).resize((20, 20), Image.BILINEAR)
    return np.asarray(img)


def run_ops(image, names, magnitudes, signs=None, space="standard", center=(0.5, 0.5)):
    """Apply one image's op sequence eagerly (nearest warp, black fill)."""
    k = len(names)
    signs = signs or [1.0] * k
    unique = tuple(dict.fromkeys(names))
    x = tf.constant(image[None], tf.float32)
    out = apply_op_sequence(
        x, tf.constant([[unique.index(n) for n in names]]), tf.constant([magnitudes], tf.float32),
        tf.constant([signs], tf.float32), op_names=unique, space=space,
        interpolation="nearest", fill_value=0.0,
        cutout_centers=tf.constant([[center] * k], tf.float32))
    return out[0].numpy()


# ----------------------------------------------------------------- magnitude mapping
def test_magnitude_mapping_matches_torchvision_bins():
    m10 = tf.linspace(0.0, 1.0, 10)  # AutoAugment: 10 bins
    one = tf.ones([10])

    def param(name, m=m10, sign=one, **kw):
        return op_parameter(name, m, sign, height=331, width=331, **kw).numpy()

    np.testing.assert_allclose(param("Rotate"), np.linspace(0, 30, 10), atol=1e-4)
    np.testing.assert_allclose(param("Rotate", sign=-one), -np.linspace(0, 30, 10), atol=1e-4)
    np.testing.assert_allclose(param("ShearX"), np.linspace(0, 0.3, 10), atol=1e-6)
    np.testing.assert_allclose(param("TranslateX"), np.linspace(0, 150, 10), atol=1e-3)
    np.testing.assert_allclose(param("Color"), 1 + np.linspace(0, 0.9, 10), atol=1e-6)
    np.testing.assert_allclose(param("Contrast", sign=-one), 1 - np.linspace(0, 0.9, 10), atol=1e-6)
    assert param("Posterize").tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]  # torchvision's bins
    np.testing.assert_allclose(param("Solarize"), np.linspace(255, 0, 10), atol=1e-3)
    np.testing.assert_allclose(param("Solarize", value_range=(0, 1)), np.linspace(1, 0, 10), atol=1e-6)
    m31 = tf.linspace(0.0, 1.0, 31)  # TrivialAugmentWide: 31 bins, wide space
    wide = dict(m=m31, sign=tf.ones([31]), space="wide")
    np.testing.assert_allclose(param("Rotate", **wide), np.linspace(0, 135, 31), atol=1e-3)
    np.testing.assert_allclose(param("TranslateY", **wide), np.linspace(0, 32, 31), atol=1e-4)
    np.testing.assert_allclose(param("Brightness", **wide), 1 + np.linspace(0, 0.99, 31), atol=1e-6)
    expected = [8 - round(i / 5) for i in range(31)]
    assert param("Posterize", **wide).tolist() == expected
    assert op_parameter("Equalize", m10, one) is None


# ----------------------------------------------------------------- ops vs PIL
@pytest.mark.parametrize("name,pil", [
    ("Brightness", lambda im, f: ImageEnhance.Brightness(im).enhance(f)),
    ("Color", lambda im, f: ImageEnhance.Color(im).enhance(f)),
    ("Contrast", lambda im, f: ImageEnhance.Contrast(im).enhance(f)),
    ("Sharpness", lambda im, f: ImageEnhance.Sharpness(im).enhance(f)),
])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_enhance_ops_match_pil(photo, name, pil, sign):
    m = 0.6
    out = run_ops(photo, [name], [m], [sign])
    ref = np.asarray(pil(Image.fromarray(photo), 1 + sign * 0.9 * m), np.float32)
    assert np.abs(out - ref).max() <= 2.0  # PIL rounds its degenerate image and the blend


def test_tone_ops_match_pil(photo):
    im = Image.fromarray(photo)
    ref = {
        "Posterize": ImageOps.posterize(im, 6),  # m=0.5 -> 8 - round(2) = 6 bits
        "Solarize": ImageOps.solarize(im, 127.5),  # m=0.5 -> threshold 127.5
        "AutoContrast": ImageOps.autocontrast(im),
        "Equalize": ImageOps.equalize(im),
        "Invert": ImageOps.invert(im),
        "Identity": im,
    }
    for name, expected in ref.items():
        out = run_ops(photo, [name], [0.5])
        assert np.abs(out - np.asarray(expected, np.float32)).max() <= 1.0, name
    # SolarizeAdd (timm): add 110*m to pixels below 128, clipped
    out = run_ops(photo, ["SolarizeAdd"], [0.6])
    p = photo.astype(np.float32)
    np.testing.assert_allclose(out, np.where(p < 128, np.minimum(p + 66, 255), p), atol=1e-3)


def _mismatch(a, b):
    return np.mean(np.abs(a - b) > 1.0)


def test_geometric_ops_match_pil(photo):
    im = Image.fromarray(photo)
    h, w = photo.shape[:2]
    # Rotate m=0.6 -> 18 degrees counter-clockwise about the centre, like PIL's rotate
    out = run_ops(photo, ["Rotate"], [0.6])
    ref = np.asarray(im.rotate(18, resample=Image.NEAREST), np.float32)
    assert _mismatch(out, ref) < 0.03  # nearest-neighbour ties at half pixels
    # ShearX m=0.5 -> factor 0.15 about the centre: PIL AFFINE (1, s, -s*h/2, 0, 1, 0)
    out = run_ops(photo, ["ShearX"], [0.5])
    ref = np.asarray(im.transform((w, h), Image.AFFINE, (1, 0.15, -0.15 * h / 2, 0, 1, 0),
                                  resample=Image.NEAREST), np.float32)
    assert _mismatch(out, ref) < 0.03
    # TranslateX / TranslateY (wide space: 32 m pixels) by whole pixels are exact
    out = run_ops(photo, ["TranslateX"], [4 / 32], space="wide")
    ref = np.asarray(im.transform((w, h), Image.AFFINE, (1, 0, -4, 0, 1, 0)), np.float32)
    np.testing.assert_array_equal(out, ref)
    out = run_ops(photo, ["TranslateY"], [3 / 32], [-1.0], space="wide")
    ref = np.asarray(im.transform((w, h), Image.AFFINE, (1, 0, 0, 0, 1, 3)), np.float32)
    np.testing.assert_array_equal(out, ref)


def test_cutout_square_of_magnitude_side(photo):
    out = run_ops(photo, ["Cutout"], [1.0], space="wide", center=(0.5, 0.5))  # side 0.5 * 20
    erased = np.all(out == 0, axis=-1) & np.any(photo != 0, axis=-1)
    assert erased.sum() == pytest.approx(100, abs=3)
    assert erased[10, 10] and not erased[0, 0]


# ----------------------------------------------------------------- fused order
def test_fused_sequence_equals_sequential_application(photo):
    for names, mags in [(["Rotate", "Solarize"], [0.7, 0.4]), (["Solarize", "Rotate"], [0.4, 0.7]),
                        (["Posterize", "Contrast"], [1.0, 0.8]), (["Equalize", "ShearY"], [0, 0.9]),
                        (["Posterize", "Contrast", "Solarize"], [1.0, 0.8, 0.5]),
                        (["Rotate", "Equalize", "Brightness"], [0.5, 0, 0.6]),
                        (["Invert", "Color", "TranslateY"], [0, 0.9, 0.3])]:
        fused = run_ops(photo, names, mags)
        step = photo
        for name, m in zip(names, mags):
            step = run_ops(step, [name], [m])
        np.testing.assert_allclose(fused, step, atol=1e-3, err_msg=str(names))


def test_consecutive_geometry_is_one_composed_warp(photo):
    two = run_ops(photo, ["TranslateX", "TranslateX"], [3 / 32, 2 / 32], space="wide")
    one = run_ops(photo, ["TranslateX"], [5 / 32], space="wide")
    np.testing.assert_array_equal(two, one)


def test_mixed_batch_each_image_gets_its_own_op(photo):
    x = tf.constant(np.stack([photo] * 3)[None][0], tf.float32)
    names = ("Identity", "Invert", "Equalize")
    out = apply_op_sequence(x, tf.constant([[0], [1], [2]]), tf.fill([3, 1], 0.5),
                            tf.ones([3, 1]), op_names=names).numpy()
    np.testing.assert_array_equal(out[0], photo)
    np.testing.assert_array_equal(out[1], 255.0 - photo)
    assert np.abs(out[2] - np.asarray(ImageOps.equalize(Image.fromarray(photo)))).max() <= 1


def test_xla_path_equals_graph_path(photo):
    """Under XLA costly ops and the warp run per chosen image (in-place updates); without XLA
    in gathered chunks. Every op in every slot, several images per op: the same output."""
    names = tuple(RANDAUGMENT_OPS)
    rng = np.random.default_rng(0)
    b = 3 * len(names)
    ops = tf.constant(np.stack([np.arange(b) % len(names), rng.permutation(b) % len(names)], 1))
    mags, signs = tf.constant(rng.uniform(0, 1, (b, 2)), tf.float32), tf.ones([b, 2])
    x = tf.constant(np.stack([photo] * b), tf.float32)

    def run(images, xla):
        return apply_op_sequence(images, ops, mags, signs, op_names=names, xla=xla)

    compiled = tf.function(lambda images: run(images, True), jit_compile=True)(x).numpy()
    np.testing.assert_allclose(compiled, run(x, False).numpy(), atol=1e-2)


# ----------------------------------------------------------------- layers
def graph(layer):
    """Run the layer's apply step as a plain graph: XLA compiles of these fused graphs take seconds
    each, so only test_xla_tf_data_and_model_use compiles (results are identical: the engine's
    random draws are integer hashes, the same with and without XLA)."""
    layer.jit_compile = False
    return layer


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return tf.constant(rng.integers(0, 256, (16, 16, 16, 3)), tf.float32)


def test_per_sample_distinct_draws(batch):
    same = tf.repeat(batch[:1], 16, axis=0)
    layer = graph(L.RandAugment(num_ops=2, magnitude=9, seed=1))
    out = layer(same).numpy().reshape(16, -1)
    assert len({row.tobytes() for row in out}) >= 12
    params = layer.sample_params(16, same, _draws(3))
    assert len(np.unique(params["ops"].numpy()[:, 0])) >= 6
    auto = L.AutoAugment("imagenet", seed=0)
    assert len(np.unique(auto.sample_params(16, same, _draws(1))["sub_policy"].numpy())) >= 6


def _draws(seed):
    from keras_aug.core.random import Draws

    return Draws(tf.constant([seed, 0], tf.int64))


@pytest.mark.parametrize("make", [
    lambda s: graph(L.RandAugment(2, 9, magnitude_std=0.5, seed=s)),
    lambda s: graph(L.AugMix(seed=s)),
    lambda s: graph(L.TrivialAugmentWide(seed=s)),
])
def test_seed_determinism(batch, make):
    a, b, c = make(3), make(3), make(4)
    out_a = [a(batch).numpy() for _ in range(2)]
    out_b = [b(batch).numpy() for _ in range(2)]
    np.testing.assert_array_equal(out_a[0], out_b[0])
    np.testing.assert_array_equal(out_a[1], out_b[1])
    assert not np.array_equal(out_a[0], out_a[1])
    assert not np.array_equal(out_a[0], c(batch).numpy())


def test_augmix_mixes_convexly(batch):
    layer = graph(L.AugMix(severity=3, width=3, depth=-1, alpha=1.0, seed=0))
    params = layer.sample_params(16, batch, _draws(0))
    np.testing.assert_allclose(params["weights"].numpy().sum(1), 1.0, atol=1e-5)
    mix = params["mix"].numpy()
    assert np.all((mix >= 0) & (mix <= 1))
    depth = (params["ops"].numpy() > 0).sum(1)
    assert set(depth) <= {1, 2, 3} and len(set(depth)) > 1
    out = layer(batch).numpy()
    assert out.min() >= 0 and out.max() <= 255 and not np.allclose(out, batch.numpy())


def test_xla_tf_data_and_model_use(batch):
    layer = L.RandAugment(2, 9, seed=0)
    compiled = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    out = compiled(batch).numpy()
    ref = graph(L.RandAugment(2, 9, seed=0))(batch).numpy()  # same seed, no XLA
    assert np.mean(np.abs(out - ref) > 1e-2) < 0.01  # float rounding only
    ds = tf.data.Dataset.from_tensor_slices((batch, tf.range(16))).batch(8).map(layer)
    images, labels = next(iter(ds))
    assert images.shape == (8, 16, 16, 3) and labels.shape == (8,)
    model = keras.Sequential([keras.Input((16, 16, 3)), graph(L.AutoAugment("svhn", seed=0)),
                              keras.layers.GlobalAveragePooling2D()])
    np.testing.assert_allclose(model.predict(batch, verbose=0),
                               tf.reduce_mean(batch, [1, 2]).numpy(), rtol=1e-5)
    uint8 = graph(L.TrivialAugmentWide(seed=0))(tf.cast(batch, tf.uint8))
    assert uint8.dtype == tf.uint8


def test_value_range_zero_one(batch):
    out = graph(L.RandAugment(3, 10, seed=0, value_range=(0, 1)))(batch / 255.0).numpy()
    assert out.min() >= 0.0 and out.max() <= 1.0


# ----------------------------------------------------------------- tables and JSON
def test_published_tables_match_paper():
    imagenet, cifar, svhn = (builtin_policy(n) for n in ("imagenet", "cifar10", "svhn"))
    assert all(len(p.sub_policies) == 25 for p in (imagenet, cifar, svhn))
    step = lambda p, i, j: (lambda s: (s.op, s.p, s.magnitude))(p.sub_policies[i][j])  # noqa: E731
    # Cubuk et al. 2019, appendix tables (first/last sub-policies)
    assert step(imagenet, 0, 0) == ("Posterize", 0.4, 8) and step(imagenet, 0, 1) == ("Rotate", 0.6, 9)
    assert step(imagenet, 24, 0) == ("Equalize", 0.8, None)
    assert step(cifar, 0, 0) == ("Invert", 0.1, None) and step(cifar, 0, 1) == ("Contrast", 0.2, 6)
    assert step(cifar, 3, 0) == ("ShearY", 0.5, 8) and step(cifar, 3, 1) == ("TranslateY", 0.7, 9)
    assert step(svhn, 0, 0) == ("ShearX", 0.9, 4) and step(svhn, 0, 1) == ("Invert", 0.2, None)
    assert step(svhn, 24, 0) == ("ShearX", 0.7, 2)
    for p in (imagenet, cifar, svhn):
        assert all(s.op in OPS for sub in p.sub_policies for s in sub)


def test_policy_json_round_trip(tmp_path, batch):
    policy = builtin_policy("cifar10")
    assert Policy.from_json(policy.to_json()) == policy
    path = tmp_path / "p.json"
    policy.save(str(path))
    assert Policy.load(str(path)) == policy
    a = graph(L.AutoAugment(str(path), seed=5))(batch).numpy()
    b = graph(L.AutoAugment("cifar10", seed=5))(batch).numpy()
    np.testing.assert_array_equal(a, b)
    layer = L.AutoAugment(str(path), seed=5)
    clone = L.AutoAugment.from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.policy == policy


@pytest.mark.parametrize("content,match", [
    ('{"sub_policies": [[["Foo", 0.5, 3]]]}', "unknown op 'Foo'"),
    ('{"sub_policies": [[["Rotate", 1.5, 3]]]}', r"probability must be in \[0, 1\], got 1.5"),
    ('{"sub_policies": [[["Rotate", 0.5, 12]]]}', r"magnitude must be a level in \[0, 9\], got 12"),
    ('{"sub_policies": [[["Rotate", 0.5]]]}', "magnitude must be a level"),
    ('{"sub_policies": [[["Rotate", 0.5, 3]]', "malformed JSON"),
    ('{"sub_policies": []}', "non-empty list"),
    ('{"sub_policies": [[["Rotate", 0.5, 3]]], "colour": 1}', "unknown key"),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_policy_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        L.AutoAugment(str(path))
    with pytest.raises(ValueError, match="does not exist"):
        L.AutoAugment(str(tmp_path / "missing.json"))


# ----------------------------------------------------------------- specs
def test_from_spec_variants(tmp_path):
    ra = from_spec("rand-m9-n2-mstd0.5")
    assert isinstance(ra, L.RandAugment)
    assert (ra.num_ops, ra.magnitude, ra.magnitude_std) == (2, 9.0, 0.5)
    assert isinstance(from_spec("trivialaugment"), L.TrivialAugmentWide)
    for name in ("cifar10", "imagenet", "svhn"):
        assert from_spec(f"autoaugment-{name}").policy == builtin_policy(name)
    am = from_spec("augmix-m3-w3-d-1")
    assert isinstance(am, L.AugMix) and (am.severity, am.width, am.depth) == (3, 3, -1)
    path = tmp_path / "p.json"
    builtin_policy("svhn").save(str(path))
    assert from_spec(str(path)).policy == builtin_policy("svhn")
    assert L.RandAugment("rand-m7-n3").get_config()["num_ops"] == 3
    assert parse_rand_spec("rand-m9-n2-mstd101")["magnitude_std"] == 101
    with pytest.raises(ValueError, match="unknown key 'x'"):
        from_spec("rand-m9-x3")
    with pytest.raises(ValueError, match="cannot parse 'omness'"):
        from_spec("randomness")
    with pytest.raises(ValueError, match="unknown policy spec 'autoaugment-mnist'"):
        from_spec("autoaugment-mnist")


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match=r"num_ops must be an integer in \[1, 16\], got 0"):
        L.RandAugment(num_ops=0)
    with pytest.raises(ValueError, match=r"magnitude must be a number in \[0.0, 10.0\], got 11"):
        L.RandAugment(magnitude=11)
    with pytest.raises(ValueError, match="unknown op"):
        L.RandAugment(ops=["Rotate", "Blur"])
    with pytest.raises(ValueError, match="interpolation must be one of"):
        L.TrivialAugmentWide(interpolation="cubic")
    with pytest.raises(ValueError, match=r"severity must be an integer in \[1, 10\], got 0"):
        L.AugMix(severity=0)
    with pytest.raises(ValueError, match="policy must be one of"):
        L.AutoAugment("mnist")
    with pytest.raises(ValueError, match="num_splits must be an integer >= 2"):
        JSDConsistencyLoss(num_splits=1)


# ----------------------------------------------------------------- AugMix + JSD
def test_jsd_loss_matches_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype(np.float32)
    labels = np.array([1, 2, 1, 2, 1, 2])
    loss = JSDConsistencyLoss(alpha=12.0, label_smoothing=0.0)(labels, logits).numpy()

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    probs = [softmax(logits[i * 2:(i + 1) * 2]) for i in range(3)]
    ce = -np.mean(np.log(probs[0][[0, 1], [1, 2]]))
    mixture = np.clip(np.mean(probs, 0), 1e-7, 1)
    kl = np.mean([np.sum(p * (np.log(p) - np.log(mixture))) / 2 for p in probs])
    assert loss == pytest.approx(ce + 12.0 * kl, rel=1e-5)
    same = np.concatenate([logits[:2]] * 3)  # identical views: no consistency penalty
    assert JSDConsistencyLoss(label_smoothing=0.0)(labels, same).numpy() == pytest.approx(ce, rel=1e-5)


def test_augmix_views_and_training_step(batch):
    views = AugMixViews(graph(L.AugMix(seed=0)))
    labels = tf.range(16) % 4
    images, tiled = views((batch, labels))
    assert images.shape == (48, 16, 16, 3)
    np.testing.assert_array_equal(images[:16].numpy(), batch.numpy())
    np.testing.assert_array_equal(tiled.numpy(), np.tile(labels.numpy(), 3))
    assert not np.array_equal(images[16:32].numpy(), images[32:].numpy())
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    model.compile("adam", loss=JSDConsistencyLoss(), jit_compile=False)
    ds = tf.data.Dataset.from_tensor_slices((batch, labels)).batch(8).take(1).map(views)
    history = model.fit(ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
