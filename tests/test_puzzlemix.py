"""PuzzleMix: the in-graph mask solver, transport, mixing (ops.puzzlemix) and PuzzleMixModel."""
import itertools
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aug.layers import PuzzleMixModel
from keras_aug.ops import puzzlemix as P
from keras_aug.ops.mix import cyclic_partner

RNG = np.random.default_rng(0)


def _problem(batch, grid, size=16, beta=1.2, gamma=0.5, eta=0.2, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.uniform(0, 1, (batch, size, size, 1)).astype("float32"))
    sal = tf.constant(rng.uniform(0, 1, (batch, size, size)).astype("float32") ** 4)
    lam = tf.constant(rng.uniform(0.05, 0.95, batch).astype("float32"))
    partner = cyclic_partner(tf.constant(rng.uniform(0, 1, batch).astype("float32")))
    s = P.block_means(sal, grid)
    s = s / tf.reduce_sum(s, axis=[1, 2], keepdims=True)
    down, right = P.pairwise_tables(x, tf.gather(x, partner), grid, beta, gamma)
    return P.unary_costs(s, tf.gather(s, partner), lam, eta), down, right


def test_block_means_and_unary_prior():
    x = RNG.uniform(0, 1, (2, 8, 12)).astype("float32")
    expected = x.reshape(2, 4, 2, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(P.block_means(tf.constant(x), 4), expected, rtol=1e-6)
    zero = tf.zeros([3, 4, 4])
    unary = P.unary_costs(zero, zero, tf.constant([0.9, 0.5, 0.1]), eta=0.2)
    # without saliency the prior picks the level nearest lam: 1, 1/2, 0
    np.testing.assert_array_equal(tf.argmin(unary, -1)[:, 0, 0], [2, 1, 0])


def test_icm_never_raises_energy_and_is_exact_without_pairwise():
    for grid in (2, 4, 8):
        unary, down, right = _problem(16, grid, seed=grid)
        start = tf.argmin(unary, -1, output_type=tf.int32)
        solved = P.solve_levels(unary, down, right, sweeps=4)
        before = P.mask_energy(start, unary, down, right).numpy()
        after = P.mask_energy(solved, unary, down, right).numpy()
        assert np.all(after <= before + 1e-7)
        assert np.any(after < before - 1e-6)  # the smoothness term changes some masks
    unary, down, right = _problem(8, 4, beta=0.0)
    np.testing.assert_array_equal(P.solve_levels(unary, down, right), tf.argmin(unary, -1))


def test_icm_matches_brute_force_minimum_on_small_grids():
    unary, down, right = _problem(32, 2, beta=40.0, seed=3)  # strong coupling: a hard case
    solved = P.mask_energy(P.solve_levels(unary, down, right, sweeps=4), unary, down, right)
    labelings = np.array(list(itertools.product(range(3), repeat=4)), "int32").reshape(-1, 2, 2)
    best = np.full(32, np.inf)
    for labels in labelings:
        energy = P.mask_energy(tf.constant(np.broadcast_to(labels, (32, 2, 2))), unary, down, right)
        best = np.minimum(best, energy.numpy())
    gap = solved.numpy() - best
    assert np.all(gap >= -1e-6)
    assert np.mean(gap < 1e-6) >= 0.75  # a local method: the exact minimum in most samples


def test_transport_moves_salient_blocks_into_the_visible_region():
    visible = tf.constant([[True, False, False, True] * 4])
    saliency = np.zeros((1, 16), "float32")
    saliency[0, [1, 2]] = 0.5
    sources = P.transport_sources(visible, tf.constant(saliency), eps=0.1, rounds=4).numpy()[0]
    assert sources[0] == 1 and sources[3] == 2  # each visible corner takes its salient neighbour
    assert len(set(sources[[0, 3]])) == 2
    # nothing worth moving (or moving too far): every block stays
    uniform = tf.fill([1, 16], 1 / 16)
    np.testing.assert_array_equal(P.transport_sources(visible, uniform, 0.8, 4)[0], np.arange(16))
    np.testing.assert_array_equal(
        P.transport_sources(tf.constant([[False] * 15 + [True]]), tf.constant(
            np.eye(16, dtype="float32")[:1]), 0.8, 4)[0], np.arange(16))


def _greedy_transport_reference(visible, saliency, eps, rounds):
    """The greedy transport in plain numpy, one image at a time, all sources, every round."""
    k = saliency.shape[0]
    n = int(round(k**0.5))
    ij = np.stack(np.divmod(np.arange(k), n), -1)
    distance = ((ij[:, None] - ij[None]) ** 2).sum(-1) / (n - 1) ** 2
    cost = eps * distance - saliency[None, :] * visible[:, None]  # [destination, source]
    for step in range(rounds):
        pick = cost.argmin(1)
        best = cost[np.arange(k), pick]
        won = np.zeros(k, bool)
        for source in np.unique(pick):
            wanting = np.flatnonzero(pick == source)
            won[wanting[np.argmin(best[wanting])]] = True  # argmin: lowest index on ties
        if step < rounds - 1:
            cost[np.flatnonzero(~won), pick[~won]] += 1e4
    return np.where(won, pick, np.arange(k))


def test_transport_matches_a_plain_reference_of_the_greedy_rounds():
    rng = np.random.default_rng(5)
    for n in (2, 4, 6):
        visible = rng.uniform(size=(16, n * n)) < 0.5
        saliency = rng.uniform(size=(16, n * n)).astype("float32") ** 4
        saliency /= saliency.sum(1, keepdims=True)
        got = P.transport_sources(tf.constant(visible), tf.constant(saliency), 0.8, n).numpy()
        for b in range(16):
            np.testing.assert_array_equal(
                got[b], _greedy_transport_reference(visible[b], saliency[b], 0.8, n))


def test_move_blocks_is_an_exact_block_permutation():
    x = RNG.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    sources = np.stack([np.arange(16)[::-1], RNG.permutation(16)]).astype("int32")
    out = P.move_blocks(tf.constant(x), tf.constant(sources), 4).numpy()
    blocks = x.reshape(2, 4, 2, 4, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 16, 2, 2, 3)
    moved = out.reshape(2, 4, 2, 4, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 16, 2, 2, 3)
    for b in range(2):
        np.testing.assert_array_equal(moved[b], blocks[b][sources[b]])


def test_puzzle_mix_weight_is_mask_mean_and_images_stay_paired():
    batch, size = 8, 16
    images = np.broadcast_to(10.0 * np.arange(batch)[:, None, None, None],
                             (batch, size, size, 1)).astype("float32")
    sal = RNG.uniform(0, 1, (batch, size, size)).astype("float32") ** 8
    lam = tf.constant(RNG.uniform(0.2, 0.8, batch).astype("float32"))
    partner = cyclic_partner(tf.constant(RNG.uniform(0, 1, batch).astype("float32")))
    for grid in (2, 4, 8):
        mixed, weight, mask = P.puzzle_mix(tf.constant(images), tf.constant(sal), lam, partner,
                                           grid, beta=0.1)
        np.testing.assert_allclose(weight, tf.reduce_mean(mask, [1, 2]), atol=1e-6)
        assert set(np.unique(mask)) <= {0.0, 0.5, 1.0}
        # constant images: each output's mean reveals its two sources and their shares
        ids = np.arange(batch, dtype="float32")
        expected = 10 * (weight * ids + (1 - weight) * ids[partner.numpy()])
        np.testing.assert_allclose(tf.reduce_mean(mixed, [1, 2, 3]), expected, atol=1e-3)


def _tiny_classifier(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])


def test_puzzlemix_model_mixes_with_saliency_and_trains():
    batch = 6
    x = np.broadcast_to(10.0 * np.arange(batch)[:, None, None, None], (batch, 8, 8, 1))
    x = (x + RNG.uniform(0, 5, (batch, 8, 8, 1))).astype("float32")
    y = np.arange(batch) % 3
    trainer = PuzzleMixModel(_tiny_classifier(), grid_sizes=(2, 4), seed=1)
    trainer.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True),
                    run_eagerly=True)
    key = tf.constant([3, 4], tf.int64)
    mixed, soft, weight = trainer.mix(tf.constant(x), tf.constant(y), key)
    again = trainer.mix(tf.constant(x), tf.constant(np.eye(3, dtype="float32")[y]), key)
    np.testing.assert_allclose(mixed, again[0], atol=1e-5)  # same key, integer vs one-hot labels
    np.testing.assert_allclose(soft, again[1], atol=1e-6)
    assert soft.shape == (batch, 3) and mixed.shape == x.shape
    np.testing.assert_allclose(tf.reduce_sum(soft, -1), 1.0, atol=1e-6)
    assert np.all((weight >= 0) & (weight <= 1))
    history = trainer.fit(x, y, batch_size=batch, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    np.testing.assert_allclose(trainer.predict(x, verbose=0), trainer.model.predict(x, verbose=0))
    clone = PuzzleMixModel.from_config(trainer.get_config())
    assert clone.grid_sizes == (2, 4) and clone.seed == 1 and clone.saliency_dtype == "auto"


def test_16bit_saliency_ranks_blocks_as_float32_and_leaves_the_model_float32():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    x = tf.constant(RNG.uniform(0, 255, (8, 16, 16, 3)).astype("float32"))
    y = tf.one_hot(np.arange(8) % 3, 3)
    maps = {}
    for dtype in ("float32", "bfloat16"):
        trainer = PuzzleMixModel(model, saliency_dtype=dtype)
        trainer.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
        maps[dtype] = tf.function(trainer.saliency)(x, y)
        assert maps[dtype].dtype == tf.float32
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    assert model(x).dtype == tf.float32
    blocks = [P.block_means(maps[d], 4).numpy().reshape(8, -1) for d in maps]
    correlation = [np.corrcoef(a, b)[0, 1] for a, b in zip(*blocks)]
    assert min(correlation) > 0.95, correlation
    assert not np.array_equal(maps["float32"], maps["bfloat16"])  # it did compute in bfloat16


def test_auto_saliency_dtype_is_float32_where_bfloat16_is_not_faster(monkeypatch):
    from keras_aug.layers.mix import fast_bfloat16

    if not tf.config.list_physical_devices("GPU"):
        assert not fast_bfloat16(jit_compile=True)  # XLA on CPU: no bfloat16 convolutions
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
        assert not fast_bfloat16(jit_compile=False)


def test_solver_runs_compiled_inside_an_uncompiled_step():
    """The XLA-compiled solver called from a plain graph gives puzzle_mix's own result."""
    from keras_aug.layers.mix import _solve_and_mix

    batch, grid = 4, 4
    x = tf.constant(RNG.uniform(0, 255, (batch, 8, 8, 1)).astype("float32"))
    sal = tf.constant(RNG.uniform(0, 1, (batch, 8, 8)).astype("float32"))
    lam = tf.constant([0.2, 0.4, 0.6, 0.8])
    partner = tf.constant([1, 2, 3, 0])
    options = (("beta", 0.5), ("transport", True))
    mixed, weight = tf.function(lambda: _solve_and_mix(x, sal, lam, partner, tf.constant(1),
                                                       (2, grid), options))()
    expected = P.puzzle_mix(x, sal, lam, partner, grid, beta=0.5, transport=True)
    np.testing.assert_allclose(mixed, expected[0], atol=1e-3)
    np.testing.assert_allclose(weight, expected[1], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"saliency_dtype": "int8"}, ValueError, r"saliency_dtype must be one of \('auto', "),
        ({"alpha": 0.0}, ValueError, r"alpha must be a number > 0 .*got 0.0"),
        ({"grid_sizes": (1, 4)}, ValueError, r"grid_sizes must be a non-empty list of integers in"),
        ({"grid_sizes": []}, ValueError, r"grid_sizes must be a non-empty list"),
        ({"beta": -1}, ValueError, r"beta must be a number >= 0, got -1"),
        ({"sweeps": 1.5}, ValueError, r"sweeps must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        PuzzleMixModel(_tiny_classifier(), **kwargs)


def test_bad_inputs():
    with pytest.raises(TypeError, match="model must be a keras.Model, got Dense"):
        PuzzleMixModel(keras.layers.Dense(3))
    trainer = PuzzleMixModel(_tiny_classifier(), grid_sizes=(2, 3))
    trainer.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"image size 8x8 must be divisible by every grid size.*\[3\]"):
        trainer.mix(tf.zeros([2, 8, 8, 1]), tf.constant([0, 1]))
    with pytest.raises(ValueError, match="PuzzleMixModel needs labels"):
        trainer.train_step((tf.zeros([2, 8, 8, 1]),))
