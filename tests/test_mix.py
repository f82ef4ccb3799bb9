"""Mixing layers: MixUp, CutMix, RandomMixing (ops.mix underneath).

Sample identity is encoded in the images: image i is constant `10 * i`, label i. After mixing, the
pixel values of each output reveal which images it came from and in what proportion, so the tests
can check that images and soft labels stay paired and that label weights are the true shares.
Behaviour tests run the apply step eagerly (tracing and XLA compiles cost seconds per layer on a
loaded 2-core machine); `test_xla_equals_eager` checks that the XLA-compiled step gives the same
outputs.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L
from keras_aug.core import AugmentationLayer
from keras_aug.ops import mix as ops

B, S, K = 12, 16, 12


# Behaviour tests run the apply step eagerly (fast); one test per file checks XLA equality.
pytestmark = pytest.mark.usefixtures("eager_apply")


def _identity_batch(batch=B, size=S, channels=1):
    images = np.broadcast_to(10.0 * np.arange(batch)[:, None, None, None],
                             (batch, size, size, channels)).astype("float32")
    return images, np.arange(batch)


def _sources(labels):
    """(own weight, partner index, partner weight) per row of soft labels."""
    out = []
    for i, row in enumerate(labels):
        others = [j for j in np.nonzero(row > 1e-6)[0] if j != i]
        assert len(others) <= 1, row
        j = others[0] if others else i
        out.append((row[i] if j != i else 1.0, j, row[j] if j != i else 0.0))
    return out


def test_label_sums_and_integer_vs_one_hot():
    x, y = _identity_batch()
    for make in (lambda: L.MixUp(num_classes=K, seed=0), lambda: L.CutMix(num_classes=K, seed=0),
                 lambda: L.RandomMixing(num_classes=K, seed=0)):
        xi, yi = make()((x, y))
        xo, yo = make()((x, np.eye(K, dtype="float32")[y]))
        assert yi.shape == (B, K) and yi.dtype == tf.float32
        np.testing.assert_allclose(yi.numpy().sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_array_equal(yi, yo)  # integer and one-hot labels mix identically
        np.testing.assert_array_equal(xi, xo)


def test_mixup_pairs_images_and_labels_per_sample():
    x, y = _identity_batch()
    xm, ym = L.MixUp(alpha=1.0, num_classes=K, seed=1)((x, y))
    xm, ym = xm.numpy(), ym.numpy()
    own = []
    for i, (w, j, wj) in enumerate(_sources(ym)):
        assert j != i  # a single-cycle permutation: nobody mixes with itself
        np.testing.assert_allclose(xm[i], 10 * (w * i + wj * j), atol=1e-3)
        own.append(w)
    assert len(set(np.round(own, 5))) == B  # one lambda per sample
    partners = [j for _, j, _ in _sources(ym)]
    assert sorted(partners) == list(range(B))  # each image is a partner exactly once


@pytest.mark.parametrize("alpha", [0.2, 2.0])
def test_mixup_lambda_follows_beta_and_partner_is_a_single_cycle(alpha):
    from scipy import stats

    from keras_aug.core.random import Draws

    n = 4000
    params = L.MixUp(alpha=alpha, num_classes=K).sample_params(
        n, tf.zeros([n, 1, 1, 1]), Draws(tf.constant([7, alpha > 1], tf.int64)))
    lam = params["lam"].numpy()
    assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    partner, seen, i = params["partner"].numpy(), set(), 0
    while i not in seen:  # follow the cycle from image 0: it must visit every image
        seen.add(i)
        i = partner[i]
    assert len(seen) == n


def test_cutmix_label_weight_is_exact_pasted_area():
    x, y = _identity_batch(batch=16, size=13)  # odd size: boxes get clipped and rounded
    xm, ym = L.CutMix(alpha=1.0, num_classes=16, seed=2)((x, y))
    xm, ym = xm.numpy()[..., 0], ym.numpy()
    clipped = 0
    for i, (w, j, wj) in enumerate(_sources(ym)):
        values = set(np.unique(xm[i]))
        assert values <= {10.0 * i, 10.0 * j}  # pixels only from the two images of its label
        pasted = (xm[i] == 10.0 * j).mean()
        assert wj == pytest.approx(pasted, abs=1e-6)  # the exact pasted area
        assert w == pytest.approx(1 - pasted, abs=1e-6)
        if pasted:
            ys, xs = np.nonzero(xm[i] == 10.0 * j)
            assert (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) == len(ys)  # one box
            clipped += ys.min() == 0 or xs.min() == 0 or ys.max() == 12 or xs.max() == 12
    assert clipped > 0


def test_cutmix_weight_differs_from_sampled_lambda_after_clipping():
    lam = tf.constant([0.5, 0.5, 0.5])
    edges, weight = ops.cutmix_boxes(lam, tf.constant([0.0, 50.0, 99.0]),
                                     tf.constant([0.0, 50.0, 99.0]), 100, 100)
    # sides round(70.7) = 71; edges round half to even, then clip to the image
    np.testing.assert_array_equal(edges, [[0, 0, 35, 35], [14, 14, 85, 85], [64, 64, 100, 100]])
    np.testing.assert_allclose(weight, [1 - 0.1225, 1 - 0.5041, 1 - 0.1296], atol=1e-6)


def test_random_mixing_switch_prob_and_label_smoothing():
    x, y = _identity_batch()
    cut = L.RandomMixing(switch_prob=1.0, label_smoothing=0.0, num_classes=K, seed=3)((x, y))
    mix = L.RandomMixing(switch_prob=0.0, label_smoothing=0.0, num_classes=K, seed=3)((x, y))
    for i, (w, j, wj) in enumerate(_sources(cut[1].numpy())):
        assert set(np.unique(cut[0].numpy()[i])) <= {10.0 * i, 10.0 * j}
        assert wj == pytest.approx((cut[0].numpy()[i] == 10.0 * j).mean(), abs=1e-6)
    for i, (w, j, wj) in enumerate(_sources(mix[1].numpy())):
        np.testing.assert_allclose(mix[0].numpy()[i], 10 * (w * i + wj * j), atol=1e-3)
    smooth = L.RandomMixing(prob=0.0, label_smoothing=0.1, num_classes=K, seed=3)
    xs, ys = smooth((x, y))
    np.testing.assert_array_equal(xs, x)  # prob 0: no sample mixed ...
    expected = np.full((B, K), 0.1 / K) + 0.9 * np.eye(K)[:B]
    np.testing.assert_allclose(ys, expected, atol=1e-6)  # ... but every target smoothed (timm)
    half = L.RandomMixing(prob=0.5, num_classes=K, label_smoothing=0.0, seed=4)((x, y))
    unmixed = [i for i in range(B) if np.array_equal(half[0].numpy()[i], x[i])]
    assert 0 < len(unmixed) < B
    np.testing.assert_array_equal(half[1].numpy()[unmixed], np.eye(K)[unmixed])


def test_engine_p_keeps_images_with_their_one_hot_labels():
    x, y = _identity_batch()
    xm, ym = L.CutMix(num_classes=K, p=0.5, seed=5)((x, y))
    kept = [i for i in range(B) if ym.numpy()[i, i] == 1.0]
    assert 0 < len(kept) < B
    np.testing.assert_array_equal(xm.numpy()[kept], x[kept])


def test_seed_determinism_and_fresh_draws():
    x, y = _identity_batch()
    a, b = L.CutMix(num_classes=K, seed=7), L.CutMix(num_classes=K, seed=7)
    first_a, first_b = a((x, y)), b((x, y))
    np.testing.assert_array_equal(first_a[0], first_b[0])
    np.testing.assert_array_equal(first_a[1], first_b[1])
    assert not np.array_equal(first_a[1], a((x, y))[1])  # a fresh draw per call


def test_segmentation_masks_keep_shape_and_follow_images():
    x, y = _identity_batch()
    masks = np.broadcast_to(np.arange(B)[:, None, None, None], (B, S, S, 1)).astype("int32")
    data = {"images": x, "labels": y, "segmentation_masks": masks, "id": np.arange(B)}
    for layer in (L.CutMix(num_classes=K, seed=8),
                  L.RandomMixing(num_classes=K, label_smoothing=0.0, seed=8),
                  L.MixUp(num_classes=K, seed=8)):
        out = layer(data)
        assert out["segmentation_masks"].shape == masks.shape
        assert out["segmentation_masks"].dtype == tf.int32
        np.testing.assert_array_equal(out["id"], np.arange(B))
        for i, (w, j, _) in enumerate(_sources(out["labels"].numpy())):
            m = out["segmentation_masks"].numpy()[i, ..., 0]
            img = out["images"].numpy()[i, ..., 0]
            if set(np.unique(img)) <= {10.0 * i, 10.0 * j}:  # pasted: masks follow the pixels
                np.testing.assert_array_equal(m, np.where(img == 10.0 * j, j, i))
            else:  # blended (MixUp): the dominant image's mask
                assert np.all(m == (i if w >= 0.5 else j))


def test_xla_equals_eager_and_tf_data_integer_labels():
    x, y = _identity_batch()
    # RandomMixing runs the same ops (blend, box mask); its XLA compile is left out for test time
    for make in (lambda: L.MixUp(num_classes=K, seed=9), lambda: L.CutMix(num_classes=K, seed=9)):
        compiled, eager = make(), make()
        compiled.jit_compile = True
        tf.config.run_functions_eagerly(False)
        out = compiled((x, y))
        tf.config.run_functions_eagerly(True)
        for c, e in zip(out, eager((x, y))):
            np.testing.assert_allclose(c, e, atol=1e-5)
    # Keras' MixUp turns integer labels into a (B, B) matrix in tf.data; ours stay (B, K)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat(2).batch(B, drop_remainder=True)
    shapes = [(a.shape, b.shape) for a, b in ds.map(L.RandomMixing(num_classes=K))]
    assert shapes == [((B, S, S, 1), (B, K))] * 2


def test_mixes_labels_flag():
    for layer in (L.MixUp, L.CutMix, L.RandomMixing):
        assert layer.mixes_labels is True


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: L.MixUp(alpha=0.0), r"alpha must be a number > 0 .*got 0.0"),
        (lambda: L.CutMix(alpha=-1), r"alpha must be a number > 0 .*got -1"),
        (lambda: L.RandomMixing(mixup_alpha=0, cutmix_alpha=0), r"both 0"),
        (lambda: L.RandomMixing(switch_prob=2), r"switch_prob must be a probability .*got 2"),
        (lambda: L.MixUp(num_classes=1), r"num_classes must be an integer >= 2 or None, got 1"),
        (lambda: L.CutMix(label_smoothing=1.0), r"label_smoothing must be a number in \[0, 1\)"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    x, y = _identity_batch(batch=4)
    with pytest.raises(ValueError, match="MixUp mixes labels, so it needs them"):
        L.MixUp(num_classes=K)(x)
    with pytest.raises(ValueError, match=r"integer labels need num_classes.*got num_classes=None"):
        L.CutMix()((x, y))
    with pytest.raises(ValueError, match=r"labels have 5 classes \(shape \(4, 5\)\) but num_classes=7"):
        L.CutMix(num_classes=7)((x, np.eye(5, dtype="float32")[y]))
    with pytest.raises(ValueError, match=r"integer labels must be class ids of shape \(batch,\)"):
        L.MixUp(num_classes=K)((x, np.zeros([4, 2, 2], "int64")))
    with pytest.raises(ValueError, match=r"float labels must be one-hot of shape"):
        L.MixUp()((x, np.zeros([4], "float32")))
    with pytest.raises(ValueError, match=r"must lie in \[0, num_classes=3\), got values in \[0, 3\]"):
        L.MixUp(num_classes=3)((x, y))
    with pytest.raises(ValueError, match=r"labels have 3 rows but images have batch size 4"):
        L.MixUp(num_classes=K)((x, y[:3]))
    with pytest.raises(ValueError, match=r"MixUp mixes images of a batch: images must have rank 4"):
        L.MixUp(num_classes=K)((x[0], y[0]))
