"""gan: DiffAugment, the models, SampleGenerator (untrained nets, fast), bad input."""
import re

import numpy as np
import pytest
import tensorflow as tf

from gan.diffaugment import check_policy, diff_augment
from gan.models import ConditionalGAN, GANConfig, build_discriminator, build_generator
from gan.sampler import SampleGenerator
from gan.trainer import config_for_data, train_gan

KEY = tf.constant([3, 4], tf.int64)


@pytest.fixture(scope="module")
def small_gan():
    gan = ConditionalGAN(GANConfig(image_shape=(16, 16, 1), num_classes=3, g_width=16, d_width=8,
                                   latent_dim=8, extra={"image_dtype": "uint8"}))
    gan.compile()
    return gan


# DiffAugment ------------------------------------------------------------------------------
def test_diff_augment_is_differentiable_seeded_and_changes_images():
    x = tf.random.stateless_uniform([6, 16, 16, 3], [1, 2], -1.0, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = diff_augment(x, KEY)
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x)
    assert y.shape == x.shape
    assert float(tf.reduce_min(y)) >= -1.0 and float(tf.reduce_max(y)) <= 1.0
    # Cutout zeroes the gradient of the erased pixels, the rest must get one.
    assert 0.3 < float(tf.reduce_mean(tf.cast(grad != 0, tf.float32))) < 1.0
    np.testing.assert_array_equal(diff_augment(x, KEY).numpy(), y.numpy())
    assert float(tf.reduce_max(tf.abs(diff_augment(x, KEY + 1) - y))) > 0.1
    assert float(tf.reduce_mean(tf.abs(y - x))) > 0.05


def test_diff_augment_probability_zero_is_identity():
    x = tf.random.stateless_uniform([4, 16, 16, 1], [5, 6], -1.0, 1.0)
    np.testing.assert_allclose(diff_augment(x, KEY, p=0.0).numpy(), x.numpy(), atol=1e-6)
    assert diff_augment(x, KEY, policy=()) is x


def test_translation_moves_whole_pixels_with_black_fill_same_in_graph():
    # batch == width: a broadcasting slip between the two axes would go unnoticed otherwise
    x = tf.random.stateless_uniform([8, 8, 8, 1], [7, 8], -1.0, 1.0)
    y = diff_augment(x, KEY, ("translation",)).numpy()
    graph = tf.function(lambda t, p: diff_augment(t, KEY, ("translation",), p=p))
    np.testing.assert_array_equal(graph(x, tf.constant(1.0)).numpy(), y)
    for a, b in zip(x.numpy(), y):
        # every output pixel is an input pixel or the fill value (-1): nearest, integer shifts
        assert np.isin(b, np.append(a, -1.0)).all()


def test_policy_validation():
    assert check_policy("color, cutout") == ("color", "cutout")
    assert check_policy(None) == ()
    with pytest.raises(ValueError, match="unknown op.*'blur'"):
        check_policy(("color", "blur"))


# models -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size,blocks", [(32, 3), (64, 4)])
def test_depth_scales_with_image_size(size, blocks):
    config = GANConfig(image_shape=(size, size, 3), num_classes=4, g_width=16, d_width=8, latent_dim=8)
    generator, discriminator = build_generator(config), build_discriminator(config)
    out = generator([tf.zeros([2, 8]), tf.constant([0, 3])])
    assert out.shape == (2, size, size, 3)
    assert sum(layer.name.startswith("up") for layer in generator.layers) == blocks
    assert sum(layer.name.startswith("down") for layer in discriminator.layers) == blocks
    logit, class_logits = discriminator([out, tf.constant([0, 3])])
    assert logit.shape == (2,) and class_logits.shape == (2, 4)


def test_ada_controller_moves_p_toward_target(small_gan):
    gan = ConditionalGAN(GANConfig(image_shape=(16, 16, 1), num_classes=3, g_width=16, d_width=8,
                                   latent_dim=8, augment_p=0.5, ada_target=0.6, ada_interval=2,
                                   ada_speed=0.1))
    gan._update_ada(tf.constant(1.0))
    assert float(gan.augment_p.numpy()) == pytest.approx(0.5)  # adjusts every 2 steps only
    gan._update_ada(tf.constant(0.8))
    assert float(gan.augment_p.numpy()) == pytest.approx(0.6)  # D too sure about reals: p up
    gan._update_ada(tf.constant(0.0))
    gan._update_ada(tf.constant(0.2))
    assert float(gan.augment_p.numpy()) == pytest.approx(0.5)  # r_t below 0.6: p down


# SampleGenerator --------------------------------------------------------------------------
def test_sample_shapes_range_dtype_and_labels(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    images, labels = sampler.sample(7, seed=0)
    assert images.shape == (7, 16, 16, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2, 0])
    images, labels = sampler.sample(4, labels=2, seed=0)
    np.testing.assert_array_equal(labels, [2, 2, 2, 2])
    float_gan = ConditionalGAN(GANConfig(image_shape=(16, 16, 3), num_classes=2, g_width=16, d_width=8,
                                         latent_dim=8, value_range=(-0.5, 0.5)))
    images, _ = SampleGenerator.from_gan(float_gan).sample(5, seed=1)
    assert images.dtype == np.float32 and images.shape == (5, 16, 16, 3)
    assert images.min() >= -0.5 and images.max() <= 0.5 and images.std() > 0


def test_sample_is_deterministic_under_seed_and_batching(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    a, _ = sampler.sample(9, seed=3)
    b, _ = sampler.sample(9, seed=3, batch_size=4)
    c, _ = sampler.sample(9, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).max() > 0


def test_as_dataset_and_mix_with(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    finite = list(sampler.as_dataset(5, seed=0).as_numpy_iterator())
    assert len(finite) == 5 and finite[0][0].shape == (16, 16, 1) and finite[0][0].dtype == np.uint8
    np.testing.assert_array_equal(finite[0][0], sampler.sample(5, seed=0)[0][0])
    stream = list(sampler.as_dataset(seed=0, batch_size=4).take(10).as_numpy_iterator())
    assert [int(y) for _, y in stream] == [0, 1, 2, 0, 0, 1, 2, 0, 0, 1]
    real = tf.data.Dataset.from_tensor_slices(
        (np.full([6, 16, 16, 1], 255, np.uint8), np.array([0, 1, 2, 0, 1, 2], np.int64)))
    mixed = list(sampler.mix_with(real, ratio=0.6, seed=0).as_numpy_iterator())
    assert len(mixed) == 15  # 6 real + 9 synthetic: 60 % synthetic
    n_real = sum(int((x == 255).all()) for x, _ in mixed)
    assert n_real == 6
    assert sorted(int(y) for _, y in mixed) == sorted([0, 1, 2] * 5)


def test_temperature_scales_the_noise(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    a, _ = sampler.sample(6, labels=1, seed=2, temperature=0.5)
    np.testing.assert_array_equal(a, sampler.sample(6, labels=1, seed=2, temperature=0.5)[0])
    assert np.abs(a.astype(int) - sampler.sample(6, labels=1, seed=2)[0].astype(int)).max() > 0
    # temperature -> 0: every noise vector collapses onto the class's mean image
    cold, _ = sampler.sample(6, labels=1, seed=2, temperature=1e-6)
    assert np.abs(cold.astype(int) - cold[:1].astype(int)).max() <= 1
    first = next(iter(sampler.as_dataset(seed=0, batch_size=4, temperature=1e-6)))[0].numpy()
    np.testing.assert_allclose(first.astype(int), sampler.sample(1, labels=0, temperature=1e-6)[0][0].astype(int),
                               atol=1)
    for bad in (0, -1.0, True):
        with pytest.raises(ValueError, match=rf"temperature .*must be a number > 0, got {re.escape(repr(bad))}"):
            sampler.sample(2, temperature=bad)


def _real_set(n_per_class=2, classes=3, value=255):
    labels = np.tile(np.arange(classes), n_per_class).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((np.full([len(labels), 16, 16, 1], value, np.uint8), labels))


def test_mix_with_real_repeats_keeps_the_fraction_with_more_distinct_synthetic(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    mixed = list(sampler.mix_with(_real_set(), ratio=0.5, real_repeats=4, seed=1).as_numpy_iterator())
    real = [x for x, _ in mixed if (x == 255).all()]
    synthetic = np.stack([x for x, _ in mixed if not (x == 255).all()])
    assert len(real) == 24 and len(synthetic) == 24  # the real set 4 times, 24 synthetic: still 50 %
    assert len(np.unique(synthetic.reshape(24, -1), axis=0)) == 24  # all different images
    assert sorted(int(y) for _, y in mixed) == sorted([0, 1, 2] * 16)


def test_mix_with_classifier_keeps_the_most_confident_candidates(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    candidates, labels = sampler.sample(18, seed=0)  # oversample=3 x 6 wanted, same seed

    def brightness_classifier(images):
        # logits: the requested class is "recognised" as much as the image is bright
        mean = tf.reduce_mean(images, axis=[1, 2, 3])
        return tf.stack([mean, mean, mean], axis=1) * tf.constant([1.0, 2.0, 3.0])

    mixed = list(sampler.mix_with(_real_set(1, value=0), ratio=2 / 3, seed=0, classifier=brightness_classifier,
                                  oversample=3).as_numpy_iterator())
    kept = np.stack([x for x, _ in mixed if not (x == 0).all()])
    kept_labels = np.array([y for x, y in mixed if not (x == 0).all()])
    assert len(kept) == 6 and sorted(kept_labels) == [0, 0, 1, 1, 2, 2]  # balanced
    probabilities = tf.nn.softmax(brightness_classifier(tf.constant(candidates, tf.float32))).numpy()
    confidence = probabilities[np.arange(18), labels]
    for k in range(3):
        best = np.sort(confidence[labels == k])[-2:]
        got = tf.nn.softmax(brightness_classifier(tf.constant(kept[kept_labels == k], tf.float32))).numpy()[:, k]
        np.testing.assert_allclose(np.sort(got), best, rtol=1e-5)


def test_bad_mix_with_arguments(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    with pytest.raises(ValueError, match="real_repeats must be an integer >= 1, got 0"):
        sampler.mix_with(_real_set(), real_repeats=0)
    with pytest.raises(ValueError, match="oversample must be an integer >= 1, got 1.5"):
        sampler.mix_with(_real_set(), oversample=1.5)
    with pytest.raises(TypeError, match="classifier must be a Keras model or callable, got str"):
        sampler.mix_with(_real_set(), classifier="cnn")
    with pytest.raises(ValueError, match=r"classifier must return \(18, 3\) class scores, got \(18, 2\)"):
        sampler.mix_with(_real_set(), classifier=lambda x: tf.zeros([tf.shape(x)[0], 2]))


def test_diversity_term_is_reported_and_validated():
    data = (tf.random.stateless_uniform([8, 16, 16, 1], [1, 1], 0, 255), tf.constant([0, 1] * 4))
    for weight in (0.0, 0.5):
        gan = ConditionalGAN(GANConfig(image_shape=(16, 16, 1), num_classes=2, g_width=16, d_width=8,
                                       latent_dim=8, diversity_weight=weight))
        gan.compile()
        logs = gan.train_step(data)
        if weight:
            assert float(logs["g_diversity"]) > 0  # untrained G: different noise, different images
        else:
            assert float(logs["g_diversity"]) == 0.0
    with pytest.raises(ValueError, match="diversity_weight must be a number >= 0, got -1"):
        GANConfig(diversity_weight=-1)


def test_export_and_reload_serve_the_same_images(small_gan, tmp_path):
    sampler = SampleGenerator.from_gan(small_gan)
    path = sampler.export(str(tmp_path / "generator"))
    reloaded = SampleGenerator.load(path)
    assert reloaded.config == small_gan.config
    a, la = sampler.sample(6, labels=[0, 1, 2, 2, 1, 0], seed=5)
    b, lb = reloaded.sample(6, labels=[0, 1, 2, 2, 1, 0], seed=5)
    np.testing.assert_array_equal(la, lb)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # rounding to uint8


# bad input --------------------------------------------------------------------------------
def test_bad_sample_arguments(small_gan):
    sampler = SampleGenerator.from_gan(small_gan)
    with pytest.raises(ValueError, match="n must be an integer >= 1.*got 0"):
        sampler.sample(0)
    with pytest.raises(ValueError, match="n must be an integer >= 1.*got -3"):
        sampler.sample(-3)
    with pytest.raises(ValueError, match="unknown label 7: the generator knows classes 0..2"):
        sampler.sample(2, labels=[1, 7])
    with pytest.raises(ValueError, match="unknown label -1"):
        sampler.sample(2, labels=-1)
    with pytest.raises(ValueError, match="labels must be one class id or 3 integer"):
        sampler.sample(3, labels=[0, 1])
    with pytest.raises(ValueError, match=r"ratio .*must be a number in \[0, 1\), got 1.0"):
        sampler.mix_with(tf.data.Dataset.from_tensor_slices((np.zeros([2, 16, 16, 1], np.uint8), [0, 1])), 1.0)


def test_bad_config_and_data():
    with pytest.raises(ValueError, match=r"image_shape must be \(size, size, channels\) with size in .*got \(28, 28, 1\)"):
        GANConfig(image_shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"got \(32, 48, 1\)"):
        GANConfig(image_shape=(32, 48, 1))
    with pytest.raises(ValueError, match="channels must be 1 or 3, got 2"):
        GANConfig(image_shape=(32, 32, 2))
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2.*got 1"):
        GANConfig(num_classes=1)
    with pytest.raises(ValueError, match="ada_target must be in \\(0, 1\\).*got 1.5"):
        GANConfig(ada_target=1.5)
    one_class = (np.zeros([4, 16, 16, 1], np.uint8), np.full([4], 3))
    with pytest.raises(ValueError, match="single class \\(label 3\\).*at least 2 classes"):
        config_for_data(*one_class)
    with pytest.raises(ValueError, match="value_range is required for float32 images"):
        config_for_data(np.zeros([4, 16, 16, 1], np.float32), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"size in .*got \(20, 20, 1\)"):
        config_for_data(np.zeros([4, 20, 20, 1], np.uint8), np.array([0, 1, 0, 1]))


def test_train_gan_rejects_bad_input_before_training(tmp_path):
    one_class = tf.data.Dataset.from_tensor_slices((np.zeros([4, 16, 16, 1], np.uint8), np.full([4], 2)))
    with pytest.raises(ValueError, match="single class \\(label 2\\)"):
        train_gan(one_class, str(tmp_path / "a"), steps=2)
    data = (np.zeros([4, 16, 16, 1], np.uint8), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        train_gan(data, str(tmp_path / "b"), steps=0)
    with pytest.raises(TypeError, match="data must be an unbatched tf.data.Dataset"):
        train_gan("digits", str(tmp_path / "c"), steps=2)
    config = GANConfig(image_shape=(16, 16, 1), num_classes=2)
    bad_labels = (np.zeros([4, 16, 16, 1], np.uint8), np.array([0, 1, 0, 5]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\), got min 0 max 5"):
        train_gan(bad_labels, str(tmp_path / "d"), steps=2, config=config)
