"""keras_aug.search: space, task, folds, reports, and Fast AutoAugment end to end."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_aug.layers import AutoAugment
from keras_aug.policies import Policy, PolicyOp
from keras_aug.search import (
    ChildConfig,
    SearchReport,
    SearchSpace,
    SearchTask,
    search_policy,
    stratified_folds,
)

TINY = ChildConfig(steps=20, jit_compile=False)


@pytest.fixture(scope="module")
def task():
    space = SearchSpace(ops=("Rotate", "ShearX", "Invert", "Contrast"), num_sub_policies=2)
    return SearchTask.from_dataset("digits", per_class=4, space=space, child=TINY)


def test_space_builds_valid_policies_and_clips():
    space = SearchSpace(ops=("Rotate", "Invert"), num_sub_policies=2, num_steps=1)
    policy = space.policy([(0, 1.5, 12.0), ("Invert", -1, 3)])
    assert policy.sub_policies == ((PolicyOp("Rotate", 1.0, 9.0),), (PolicyOp("Invert", 0.0),))
    for seed in range(5):
        AutoAugment(space.sample(np.random.default_rng(seed)))  # validated by Policy


def test_space_suggest_matches_fixed_trial():
    import optuna

    space = SearchSpace(ops=("Rotate", "Invert"), num_sub_policies=1)
    params = {"op0_0": "Rotate", "p0_0": 0.3, "level0_0": 4.0,
              "op0_1": "Invert", "p0_1": 0.9, "level0_1": 1.0}
    policy = space.suggest(optuna.trial.FixedTrial(params))
    assert policy.sub_policies[0] == (PolicyOp("Rotate", 0.3, 4.0), PolicyOp("Invert", 0.9))


def test_space_layer_takes_any_policy_of_the_space_without_retrace():
    space = SearchSpace(ops=("Rotate", "Invert", "Contrast"), num_sub_policies=3)
    layer = space.layer(seed=0, jit_compile=False)
    images = tf.random.uniform([4, 16, 16, 3], 0, 255)
    fn = tf.function(lambda x: layer(x, training=True))
    outs = []
    for seed in range(3):
        layer.policy = space.sample(np.random.default_rng(seed))
        outs.append(fn(images))
    assert fn.experimental_get_tracing_count() == 1
    assert not np.allclose(outs[0], outs[1])


@pytest.mark.parametrize("kwargs, match", [
    ({"ops": ("Nope",)}, "unknown op"),
    ({"num_sub_policies": 0}, "num_sub_policies"),
    ({"magnitude_bins": 1}, "magnitude_bins"),
    ({"space": "huge"}, "space"),
])
def test_space_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(**kwargs)


def test_space_policy_rejects_wrong_step_count_and_foreign_op():
    space = SearchSpace(ops=("Rotate",), num_sub_policies=1, num_steps=1)
    with pytest.raises(ValueError, match="expected 1"):
        space.policy([])
    with pytest.raises(ValueError, match="not in this space"):
        space.policy([("Invert", 0.5, 0)])


def test_folds_are_stratified_and_too_small_classes_say_what_is_needed():
    labels = np.repeat(np.arange(4), 5)
    splits = stratified_folds(labels, 5, seed=0)
    for train, held in splits:
        assert sorted(np.bincount(labels[held])) == [1, 1, 1, 1]
        assert not set(train) & set(held)
    with pytest.raises(ValueError, match="at least 6 images of every class"):
        stratified_folds(labels, 6)


def test_task_validates_its_arrays():
    images = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        SearchTask(images.astype(np.float32), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match="labels must be in"):
        SearchTask(images, np.array([0, 1, 2, 3]), 2)
    with pytest.raises(ValueError, match="4 integers"):
        SearchTask(images, np.zeros(3, int), 2)
    with pytest.raises(ValueError, match=r"\(N, H, W"):
        SearchTask(images[..., 0], np.zeros(4, int), 2)


def test_policy_meta_round_trips_and_is_validated():
    policy = Policy(((PolicyOp("Rotate", 0.5, 3),),), meta={"command": "kaug search"})
    again = Policy.from_json(policy.to_json())
    assert again == policy and again.meta == {"command": "kaug search"}
    with pytest.raises(ValueError, match="'meta' must be a JSON object"):
        Policy.from_dict({**policy.to_dict(), "meta": [1]})


def test_report_plot_and_round_trip(tmp_path):
    report = SearchReport("fast_aa", 0, 12.0, [{"trial": i, "group": f"fold {i % 2}",
                                                "score": i / 10} for i in range(6)], [], {})
    assert os.path.getsize(report.plot(str(tmp_path / "r.png"))) > 1000
    assert SearchReport.from_dict(json.loads(open(report.save(str(tmp_path / "r.json"))).read())) \
        == report


def test_unknown_method_and_task_type():
    with pytest.raises(ValueError, match="method must be one of"):
        search_policy(None, "grid")
    with pytest.raises(TypeError, match="SearchTask"):
        search_policy("digits")


@pytest.mark.slow
def test_fast_aa_end_to_end_deterministic_and_resumable(task, tmp_path):
    options = dict(minutes=5, folds=2, trials=3, top=2, draws=2, progress=False)
    first = search_policy(task, "fast_aa", workdir=str(tmp_path / "a"), seed=1, **options)
    again = search_policy(task, "fast_aa", workdir=str(tmp_path / "b"), seed=1, **options)
    assert first.policy == again.policy
    assert [t["score"] for t in first.report.trials] == [t["score"] for t in again.report.trials]
    assert len(first.report.trials) == 6 and not first.report.stopped_early
    assert 1 <= len(first.policy.sub_policies) <= 2 * 2 * 2

    written = first.save(str(tmp_path / "out" / "policy.json"), command="kaug search ...")
    layer = AutoAugment(written[0], seed=0)
    out = layer(tf.random.uniform([4, 32, 32, 1], 0, 255))
    assert out.shape == (4, 32, 32, 1)
    assert Policy.load(written[0]).meta["command"] == "kaug search ..."
    assert all(os.path.exists(p) for p in written)

    with pytest.raises(ValueError, match="already holds a search"):
        search_policy(task, "fast_aa", workdir=str(tmp_path / "a"), seed=1, **options)
    with pytest.raises(ValueError, match="other settings"):
        search_policy(task, "fast_aa", workdir=str(tmp_path / "a"), seed=1, resume=True,
                      **{**options, "draws": 3})
    more = search_policy(task, "fast_aa", workdir=str(tmp_path / "a"), seed=1, resume=True,
                         **{**options, "trials": 5})
    scores = [t["score"] for t in more.report.trials]
    assert len(scores) == 10
    # the 3 finished trials of each fold are kept, not rerun
    for fold in (0, 1):
        old = [t["score"] for t in first.report.trials if t["group"] == f"fold {fold}"]
        new = [t["score"] for t in more.report.trials if t["group"] == f"fold {fold}"]
        assert new[:3] == old


@pytest.mark.slow
def test_fast_aa_two_workers_share_one_storage(task, tmp_path):
    result = search_policy(task, "fast_aa", workdir=str(tmp_path / "w"), minutes=5, folds=2,
                           trials=40, top=1, draws=1, workers=2, progress=False)
    per_fold = [sum(t["group"] == f"fold {k}" for t in result.report.trials) for k in (0, 1)]
    assert all(40 <= n <= 41 for n in per_fold), per_fold  # a worker may finish one in flight
    assert {t["worker"] for t in result.report.trials} == {0, 1}


def test_fast_aa_budget_too_small_to_train_a_fold(task, tmp_path):
    with pytest.raises(ValueError, match="too small"):
        search_policy(task, "fast_aa", workdir=str(tmp_path), minutes=0.001, folds=2,
                      progress=False)


def test_fast_aa_bad_settings(task, tmp_path):
    with pytest.raises(ValueError, match="folds"):
        search_policy(task, "fast_aa", workdir=str(tmp_path), folds=1)
    with pytest.raises(ValueError, match="at least 5 images of every class"):
        search_policy(task, "fast_aa", workdir=str(tmp_path), folds=5)
    with pytest.raises(TypeError):
        search_policy(task, "fast_aa", workdir=str(tmp_path), bogus=1)


def test_cli_rejects_an_option_the_method_does_not_have(capsys):
    from kaug.cli import main

    assert main(["search", "--option", "population=4"]) == 2
    assert "not a setting of fast_aa" in capsys.readouterr().err
    assert main(["search", "--option", "folds"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_search_writes_a_policy_autoaugment_applies(tmp_path, capsys):
    from kaug.cli import main

    out = str(tmp_path / "policy.json")
    assert main(["search", "--dataset", "digits", "--per-class", "3", "--child-steps", "10",
                 "--ops", "Rotate", "Invert", "--sub-policies", "2", "--minutes", "3",
                 "--option", "folds=3", "--option", "trials=4", "--option", "top=1",
                 "--no-progress", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "12 trials" in printed and "wrote " + out in printed
    policy = Policy.load(out)
    assert policy.meta["command"].startswith("kaug search --dataset digits --method fast_aa")
    assert AutoAugment(out)(tf.zeros([2, 32, 32, 1])).shape == (2, 32, 32, 1)
    assert os.path.exists(str(tmp_path / "policy.search" / "study.journal"))


def test_cli_method_choices_are_the_library_methods():
    from kaug.commands.search import METHOD_NAMES
    from keras_aug.search import METHODS

    assert METHOD_NAMES == tuple(METHODS)


def _schedule():
    from keras_aug.search import PolicySchedule

    a = Policy(((PolicyOp("Invert", 0.0),),))
    b = Policy(((PolicyOp("Invert", 1.0),),))
    return PolicySchedule(((0, a), (2, b)), epochs=4), a, b


def test_policy_schedule_round_trips_and_validates(tmp_path):
    from keras_aug.search import PolicySchedule

    schedule, a, b = _schedule()
    assert [schedule.policy_at(e) for e in range(4)] == [a, a, b, b] and schedule.final == b
    path = schedule.save(str(tmp_path / "s.schedule.json"))
    assert PolicySchedule.load(path) == schedule
    with pytest.raises(ValueError, match="start at 0 and increase"):
        PolicySchedule(((1, a),), epochs=2)
    with pytest.raises(ValueError, match="same shape"):
        PolicySchedule(((0, a), (1, Policy(((PolicyOp("Invert", 1.0),),) * 2))), epochs=2)
    with pytest.raises(ValueError, match="not a kaug policy schedule"):
        PolicySchedule.from_dict({"entries": []})
    with pytest.raises(ValueError, match="does not exist"):
        PolicySchedule.load(str(tmp_path / "missing.json"))


def test_scheduled_policy_switches_during_fit_without_retracing():
    import keras

    from keras_aug.search import ScheduledPolicy

    schedule, a, _ = _schedule()
    layer = AutoAugment(a, seed=0, jit_compile=False)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(tf.reduce_mean(augment(tf.zeros([2, 4, 4, 1])))))

    augment = tf.function(lambda x: layer(x, training=True))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.zeros((4, 1)), np.zeros((4, 1)), epochs=4, verbose=0,
              callbacks=[ScheduledPolicy(layer, schedule), Probe()])
    assert seen == [0.0, 0.0, 255.0, 255.0]  # Invert at p=1 from epoch 2
    assert augment.experimental_get_tracing_count() == 1
    with pytest.raises(TypeError, match="AutoAugment"):
        ScheduledPolicy(keras.layers.Dense(1), schedule)

def test_shipped_policy_was_found_by_kaug_search_and_applies():
    from keras_aug.search import shipped_policy

    policy = shipped_policy("digits_fast_aa")
    command = policy.meta["command"]
    assert command.startswith("kaug search --dataset digits --method fast_aa") and \
        "--per-class 10" in command and "--seed 0" in command
    assert policy.meta["method"] == "fast_aa" and len(policy.sub_policies) >= 5
    layer = AutoAugment(policy, seed=0, jit_compile=False)
    assert layer(tf.zeros([2, 32, 32, 1]), training=True).shape == (2, 32, 32, 1)
    with pytest.raises(ValueError, match="name must be one of \\['digits_fast_aa'\\]"):
        shipped_policy("cifar")


def test_the_searched_policy_is_a_full_demo_row():
    from kaug.demo import demo_rows

    (row,) = [r for r in demo_rows() if r.name.startswith("searched policy")]
    assert not row.core and row.augment(0).policy.meta["method"] == "fast_aa"
