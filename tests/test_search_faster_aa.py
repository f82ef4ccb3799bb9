"""Faster AutoAugment: gradients of the differentiable policy, end to end, seeds, resume."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_aug
from keras_aug.ops import color as color_ops
from keras_aug.search import SearchSpace, SearchTask, search_policy
from keras_aug.search import faster_aa
from keras_aug.search.faster_aa import DIFFERENTIABLE_OPS, DifferentiablePolicy, apply_op

SMALL = SearchSpace(ops=("Rotate", "Brightness", "Solarize"), num_sub_policies=2)


@pytest.fixture(scope="module")
def task():
    return SearchTask.from_dataset("digits", per_class=5, space=SMALL)


def run(task, workdir, **kw):
    kw = {"steps": 6, "batch_size": 8, "log_every": 3, "checkpoint_every": 3, **kw}
    return faster_aa.search(task, workdir=str(workdir), progress=False, **kw)


def test_gradients_reach_logits_probabilities_and_magnitudes():
    ops = DIFFERENTIABLE_OPS + ("Solarize", "Posterize", "Cutout")
    policy = DifferentiablePolicy(SearchSpace(ops=ops, num_sub_policies=1, num_steps=1), seed=0)
    images = tf.random.stateless_uniform([192, 12, 12, 3], (0, 1), 0.0, 255.0)
    weights = tf.random.stateless_normal([192, 12, 12, 3], (0, 2))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(policy(images) * weights)
    grads = tape.gradient(loss, [policy.op_logits, policy.probabilities, policy.magnitudes])
    for name, grad in zip(("op_logits", "probabilities", "magnitudes"), grads):
        assert grad is not None, name
        per_op = np.abs(tf.convert_to_tensor(grad).numpy()[0, 0])
        zero = [op for op, g in zip(ops, per_op) if g == 0]
        assert not zero, f"{name}: no gradient for {zero}"


def test_straight_through_ops_forward_exactly_backward_identity():
    images = tf.random.stateless_uniform([4, 8, 8, 1], (0, 3), 0.0, 255.0)
    magnitude = tf.constant([0.2, 0.4, 0.6, 0.8])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([images, magnitude])
        out = apply_op("Solarize", images, magnitude, tf.ones([4]), tf.zeros([4, 2]))
    threshold = 255.0 - magnitude * 255.0
    np.testing.assert_allclose(out, color_ops.solarize(images, threshold, (0, 255)))
    np.testing.assert_allclose(tape.gradient(out, images), np.ones([4, 8, 8, 1]))
    np.testing.assert_allclose(tape.gradient(out, magnitude), np.full([4], 255.0 * 64))


def test_discrete_policy_takes_the_largest_logit():
    policy = DifferentiablePolicy(SMALL, seed=0)
    policy.op_logits.assign(tf.one_hot([[[1], [2]], [[0], [1]]], 3)[..., 0, :] * 5.0)
    policy.probabilities.assign(tf.fill(policy.probabilities.shape, 0.25))
    policy.magnitudes.assign(tf.fill(policy.magnitudes.shape, 0.5))
    steps = policy.policy().sub_policies
    assert [[s.op for s in sub] for sub in steps] == [["Brightness", "Solarize"],
                                                       ["Rotate", "Brightness"]]
    assert steps[0][0].p == 0.25 and steps[0][0].magnitude == pytest.approx(4.5)


def test_bad_input(task, tmp_path):
    with pytest.raises(TypeError, match="task"):
        faster_aa.search("digits", steps=1)
    for bad in ({"steps": 0}, {"epsilon": -1.0}, {"temperature": 0.0}, {"batch_size": 0},
                {"log_every": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            faster_aa.search(task, progress=False, **bad)
    with pytest.raises(ValueError, match="workdir"):
        faster_aa.search(task, resume=True, progress=False)
    with pytest.raises(TypeError, match="space"):
        DifferentiablePolicy(("Rotate",))
    (tmp_path / "settings.json").write_text("{}")
    with pytest.raises(ValueError, match="resume=True"):
        faster_aa.search(task, workdir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="no time"):
        faster_aa.search(task, minutes=1e-6, progress=False)


@pytest.mark.slow
def test_end_to_end_policy_loads_in_autoaugment(task, tmp_path):
    result = search_policy(task, "faster_aa", workdir=str(tmp_path / "w"), progress=False,
                           steps=6, batch_size=8, log_every=3)
    assert result.report.settings["steps_done"] == 6 and not result.report.stopped_early
    assert [t["group"] for t in result.report.trials] == ["critic", "augmenter"] * 2
    assert all(np.isfinite(t["score"]) for t in result.report.trials)
    written = result.save(str(tmp_path / "policy.json"))
    assert all(os.path.exists(p) for p in written)
    layer = keras_aug.layers.AutoAugment(str(tmp_path / "policy.json"), seed=0,
                                         jit_compile=False)
    out = layer(task.images[:8].astype(np.float32))
    assert out.shape == (8, 32, 32, 1)
    assert len(layer.policy.sub_policies) == SMALL.num_sub_policies


@pytest.fixture(scope="module")
def whole(task, tmp_path_factory):
    """One uninterrupted 6-step search, the reference of the seed and resume tests."""
    return run(task, tmp_path_factory.mktemp("whole"))


@pytest.mark.slow
def test_same_seed_repeats_the_search(task, whole, tmp_path):
    again = run(task, tmp_path / "b")
    assert again.policy == whole.policy
    assert again.report.trials == whole.report.trials


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(task, whole, tmp_path):
    first = run(task, tmp_path / "c", steps=3)
    assert first.report.settings["steps_done"] == 3
    with pytest.raises(ValueError, match="epsilon"):
        run(task, tmp_path / "c", epsilon=0.5, resume=True)
    resumed = run(task, tmp_path / "c", resume=True)
    assert resumed.report.settings["resumed_from"] == 3  # steps 1-3 are not redone
    assert resumed.policy == whole.policy
    assert resumed.report.trials == whole.report.trials
    with open(tmp_path / "c" / "trials.json") as f:
        assert len(json.load(f)) == 4
