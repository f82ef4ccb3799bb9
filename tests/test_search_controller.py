"""AutoAugment's controller search (`keras_aug.search.controller`)."""
import json

import numpy as np
import pytest
import tensorflow as tf

import keras_aug
from keras_aug.search import ChildConfig, SearchSpace, SearchTask
from keras_aug.search.controller import PROB_BINS, Controller, search

SMALL = SearchSpace(ops=("Rotate", "Invert", "Solarize", "Equalize"), num_sub_policies=3)


@pytest.fixture(scope="module")
def task():
    return SearchTask.from_dataset("digits", per_class=5, space=SMALL,
                                   child=ChildConfig(steps=20, jit_compile=False))


def run(task, workdir, **kwargs):
    kwargs = {"minutes": 3, "batch": 2, "progress": False, "workdir": str(workdir), **kwargs}
    return search(task, **kwargs)


def test_sampled_policies_are_valid_for_the_space():
    controller = Controller(SMALL, units=16, seed=1)
    tokens, log_prob = controller.sample(16, np.random.default_rng(0))
    assert tokens.shape == (16, 3 * 3 * 2)
    assert tokens[:, 0::3].max() < len(SMALL.ops) and tokens[:, 1::3].max() < PROB_BINS
    assert tokens.min() >= 0 and tokens[:, 2::3].max() < SMALL.magnitude_bins
    np.testing.assert_allclose(controller.log_prob(tokens)[0].numpy(), log_prob, atol=1e-4)
    for row in tokens:
        policy = controller.policy(row)
        assert len(policy.sub_policies) == 3 and all(len(s) == 2 for s in policy.sub_policies)
        for step in (s for sub in policy.sub_policies for s in sub):
            assert step.op in SMALL.ops
            assert round(step.p * 10) == pytest.approx(step.p * 10)
            assert step.magnitude is None or step.magnitude == int(step.magnitude)
    layer = SMALL.layer(seed=0, jit_compile=False)
    layer.policy = controller.policy(tokens[0])  # fits the search's layer, no new layer needed
    assert layer(tf.zeros([2, 8, 8, 1])).shape == (2, 8, 8, 1)


def test_sampling_is_seeded():
    a = Controller(SMALL, units=16, seed=3).sample(4, np.random.default_rng(5))[0]
    b = Controller(SMALL, units=16, seed=3).sample(4, np.random.default_rng(5))[0]
    np.testing.assert_array_equal(a, b)


def test_ppo_update_raises_the_log_probability_of_a_high_reward_sample():
    controller = Controller(SMALL, units=16, seed=0, learning_rate=1e-2, epochs=4)
    tokens, log_prob = controller.sample(6, np.random.default_rng(0))
    rewards = np.array([0.9, 0.1, 0.1, 0.1, 0.1, 0.1])
    controller.update(tokens, log_prob, rewards - rewards.mean())
    after = controller.log_prob(tokens)[0].numpy()
    assert after[0] > log_prob[0] + 0.1
    assert np.all(after[1:] < log_prob[1:])


def test_checkpoint_round_trip(tmp_path):
    a, b = Controller(SMALL, units=8, seed=0), Controller(SMALL, units=8, seed=1)
    tokens, log_prob = a.sample(2, np.random.default_rng(0))
    a.update(tokens, log_prob, np.array([1.0, -1.0]))
    a.save(str(tmp_path / "c.npz"))
    b.load(str(tmp_path / "c.npz"))
    np.testing.assert_allclose(b.log_prob(tokens)[0], a.log_prob(tokens)[0])
    assert int(b.optimizer.iterations) == int(a.optimizer.iterations) == 4


def test_bad_input(task, tmp_path):
    with pytest.raises(TypeError, match="task"):
        search("digits", minutes=1)
    with pytest.raises(TypeError, match="space"):
        Controller("standard")
    for name, value in [("batch", 0), ("top", 0), ("max_children", 0), ("folds", 1),
                        ("minutes", 0), ("seed", -1), ("baseline_decay", 1.0), ("clip", 0.0),
                        ("units", 0)]:
        with pytest.raises(ValueError, match=name):
            run(task, tmp_path / name, **{name: value})
    with pytest.raises(ValueError, match="class 0 has 1"):
        tiny = SearchTask(task.images[:20], np.r_[0, np.ones(19, int)], 2, space=SMALL)
        run(tiny, tmp_path / "tiny")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "settings.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match="resume=True"):
        run(task, tmp_path / "old")


@pytest.mark.slow
def test_end_to_end_writes_a_policy_autoaugment_applies(task, tmp_path):
    result = run(task, tmp_path / "w", max_children=2, top=2)
    report = result.report
    assert report.method == "autoaugment" and not report.stopped_early
    assert [t["group"] for t in report.trials] == ["controller"] * 2
    assert all(0.0 <= t["score"] <= 1.0 and "policy" in t for t in report.trials)
    assert report.settings["controller_updates"] == 1  # one full batch of 2
    best = sorted(report.trials, key=lambda t: -t["score"])[:2]
    expected = {tuple(json.dumps(s) for s in sub) for t in best
                for sub in t["policy"]["sub_policies"]}
    assert 1 <= len(result.policy.sub_policies) <= 2 * SMALL.num_sub_policies
    assert len(result.policy.sub_policies) == len(expected)
    paths = result.save(str(tmp_path / "policy.json"))
    layer = keras_aug.layers.AutoAugment(paths[0], seed=0)
    out = layer(tf.cast(task.images[:4], tf.float32))
    assert out.shape == (4, 32, 32, 1)


@pytest.mark.slow
def test_same_seed_same_search(task, tmp_path):
    a = run(task, tmp_path / "a", batch=1, max_children=2, seed=4)
    b = run(task, tmp_path / "b", batch=1, max_children=2, seed=4)
    assert [t["policy"] for t in a.report.trials] == [t["policy"] for t in b.report.trials]
    assert [t["score"] for t in a.report.trials] == [t["score"] for t in b.report.trials]
    assert a.policy == b.policy


@pytest.mark.slow
def test_resume_does_not_retrain_finished_children(task, tmp_path):
    first = run(task, tmp_path / "w", max_children=2, batch=3)
    with pytest.raises(ValueError, match="resume=True"):
        run(task, tmp_path / "w", max_children=3, batch=3)
    with pytest.raises(ValueError, match="batch"):
        run(task, tmp_path / "w", max_children=3, batch=2, resume=True)
    more = run(task, tmp_path / "w", max_children=3, batch=3, resume=True)
    assert len(more.report.trials) == 3
    assert more.report.trials[:2] == first.report.trials  # same records: not trained again
    assert more.report.settings["controller_updates"] == 1
    assert more.report.trials[2]["batch"] == 0  # the resumed run finished the pending batch


@pytest.mark.slow
def test_budget_too_small_for_one_child(task, tmp_path):
    slow = SearchTask(task.images, task.labels, 10, space=SMALL,
                      child=ChildConfig(steps=5000, jit_compile=False))
    with pytest.raises(ValueError, match="one child of 5000 steps takes about"):
        run(slow, tmp_path / "w", minutes=0.1)
