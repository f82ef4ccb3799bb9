"""Population Based Augmentation (`keras_aug.search.pba`): PBA's hyperparameters as a policy, its
explore rule, and tiny searches on Ray Tune (one Ray cluster shared by the module)."""
import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_aug.layers import AutoAugment
from keras_aug.policies import Policy, PolicyOp
from keras_aug.search import ChildConfig, PolicySchedule, SearchSpace, SearchTask, search_policy
from keras_aug.search.pba import PROB_LEVELS, RECORDS, PBAExplore, levels_policy, num_levels

SPACE = SearchSpace(ops=("Rotate", "ShearX", "Invert", "Contrast"))
# 2 members, 3 epochs of 20 steps, a perturbation after every epoch: two exploits
OPTIONS = dict(population=2, epochs=3, perturbation_interval=1, folds=3, cpus=2, minutes=15,
               progress=False)


@pytest.fixture(scope="module")
def task():
    return SearchTask.from_dataset("digits", per_class=6, space=SPACE,
                                   child=ChildConfig(steps=60, jit_compile=False))


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster for the module's searches (each search then skips Ray's start)."""
    ray = pytest.importorskip("ray")
    from keras_aug.search.pba import _worker_env

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": _worker_env()})
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(task, cluster, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("pba") / "reference")
    return search_policy(task, "pba", seed=0, workdir=workdir, **OPTIONS)


def records(workdir):
    with open(os.path.join(workdir, RECORDS)) as f:
        return [json.loads(line) for line in f]


def scores(result):
    return sorted((t["member"], t["epoch"], t["score"]) for t in result.report.trials)


def test_levels_are_one_step_sub_policies_per_op_and_slot():
    levels = [0] * num_levels(SPACE)
    levels[0:4] = [3, 7, 10, 12]  # Rotate slot 0: p 0.3, level 7; slot 1: p 1, level clipped
    levels[8:10] = [5, 4]  # Invert slot 0 (no magnitude)
    policy = levels_policy(SPACE, levels)
    assert num_levels(SPACE) == 4 * 2 * 2 and len(policy.sub_policies) == 8
    assert policy.sub_policies[:2] == ((PolicyOp("Rotate", 0.3, 7.0),),
                                      (PolicyOp("Rotate", 1.0, 9.0),))
    assert policy.sub_policies[4] == (PolicyOp("Invert", 0.5, None),)
    assert all(s[0].p == 0 for i, s in enumerate(policy.sub_policies) if i not in (0, 1, 4))
    layer = AutoAugment(levels_policy(SPACE, [0] * 16), ops=list(SPACE.ops), seed=0,
                        jit_compile=False)
    layer.policy = policy  # same shape: a table swap
    assert layer(tf.zeros([2, 8, 8, 1]), training=True).shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match="expected 16 values"):
        levels_policy(SPACE, [0] * 4)


def test_explore_is_pbas_rule():
    explore = PBAExplore(seed=0, top_level=9)
    start = np.array([5, 4] * 5000)
    new = np.array(explore.explore(start.tolist()))
    p, m = new[0::2], new[1::2]
    assert p.min() >= 0 and p.max() <= PROB_LEVELS and m.min() >= 0 and m.max() <= 9
    # a shift moves at most 3 levels; only resampling (probability 0.2) lands farther
    far_p = np.mean(np.abs(p - 5) > 3)  # resampled into {0, 1, 9, 10}
    far_m = np.mean(np.abs(m - 4) > 3)  # resampled into {0, 8, 9}
    assert far_p == pytest.approx(0.2 * 4 / 11, abs=0.015)
    assert far_m == pytest.approx(0.2 * 3 / 10, abs=0.015)
    assert np.mean(new == start) == pytest.approx(0.8 * 0.25 + 0.2 * 0.1, abs=0.03)
    top = np.array(explore.explore([10, 9] * 1000))
    assert top[0::2].max() == 10 and top[1::2].max() == 9  # clipped, never above
    assert PBAExplore(0, 9).explore([0] * 20) == PBAExplore(0, 9).explore([0] * 20)
    config = {"levels": [0, 0], "member": 3}
    assert PBAExplore(1, 9)(config)["member"] == 3 and config["levels"] == [0, 0]


def test_explore_continues_its_sequence_across_runs(tmp_path):
    path = str(tmp_path / "rng.json")
    one = PBAExplore(2, 9)
    expected = [one.explore([0] * 8), one.explore([0] * 8)]
    first = PBAExplore(2, 9, state_path=path)
    assert first.explore([0] * 8) == expected[0]
    assert PBAExplore(2, 9, state_path=path).explore([0] * 8) == expected[1]  # a resumed run


def test_child_epoch_depends_only_on_its_inputs_and_swaps_policies_without_retrace(
        task, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from dataclasses import asdict

    from keras_aug.search.pba_member import Child
    from keras_aug.search.workdir import prepare_workdir

    traces = []
    sample = AutoAugment.sample_params
    monkeypatch.setattr(AutoAugment, "sample_params",
                        lambda self, *args: traces.append(1) or sample(self, *args))
    settings = {"seed": 0, "folds": 3, "epochs": 3, "space": SPACE.to_dict(),
                "child": asdict(task.child)}
    child = Child(prepare_workdir(str(tmp_path), task, settings, resume=False), threads=1)
    state = child.initial_state(1)
    plain = child.epoch(state, 1, 0, [0] * 16)
    again = child.epoch(state, 1, 0, [0] * 16)  # whatever ran on this worker before
    strong = child.epoch(state, 1, 0, [10, 9] * 8)
    assert all(np.array_equal(a, b) for a, b in zip(plain["state"], again["state"]))
    assert plain["score"] == again["score"]
    assert not all(np.array_equal(a, b) for a, b in zip(plain["state"], strong["state"]))
    assert len(traces) == 1  # one trace of the augmentation for every policy


def test_stopper_deadline_member_epochs_and_stall(tmp_path):
    pytest.importorskip("ray")
    import time

    from keras_aug.search.pba_member import Deadline

    limits, rows = str(tmp_path / "deadline.json"), str(tmp_path / RECORDS)
    stopper = Deadline(limits, rows)

    def write(**values):
        with open(limits, "w") as f:
            json.dump({"started": time.time(), "deadline": time.time() + 60, **values}, f)

    write()
    assert not stopper.stop_all() and not stopper(None, {})
    write(deadline=time.time() - 1)
    assert stopper.stop_all()
    with open(rows, "w") as f:
        f.write(json.dumps({"seconds": 1.0}) + "\n" + json.dumps({"seconds": 2.0}) + "\n")
    write(max_member_epochs=3)
    assert not stopper.stop_all()
    write(max_member_epochs=2)
    assert stopper.stop_all()
    os.utime(rows, (time.time() - 1000, time.time() - 1000))
    write(started=time.time() - 1000)
    assert stopper.stop_all()  # nothing recorded for 1000 s > 240 s + 5 x 2 s
    assert json.load(open(limits + ".stalled"))["epochs_recorded"] == 2


@pytest.mark.parametrize("options, error, match", [
    ({"population": 1}, ValueError, "population must be an integer >= 2"),
    ({"epochs": 1}, ValueError, "epochs must be an integer >= 2"),
    ({"perturbation_interval": 3}, ValueError, "perturbation_interval must be < epochs=3"),
    ({"quantile": 0.6}, ValueError, "quantile"),
    ({"folds": 7}, ValueError, "at least 7 images of every class"),
    ({"cpus": 0}, ValueError, "cpus"),
    ({"max_member_epochs": 0}, ValueError, "max_member_epochs"),
    ({"epochs": 100}, ValueError, "cannot be split into epochs=100"),
    ({"bogus": 1}, TypeError, "bogus"),
])
def test_bad_options_fail_before_ray_starts(task, tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        search_policy(task, "pba", workdir=str(tmp_path), **{**OPTIONS, **options})
    assert not os.listdir(tmp_path)  # nothing started, nothing written


def test_without_ray_the_error_says_what_to_install(task, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r'pip install "kaug\[pba\]"'):
        search_policy(task, "pba", workdir=str(tmp_path), **OPTIONS)


@pytest.mark.slow
def test_end_to_end_writes_a_policy_and_its_schedule(reference, tmp_path):
    report = reference.report
    assert not report.stopped_early and report.method == "pba"
    assert report.settings["synchronized"]
    assert len(report.trials) == 2 * 3  # every member, every epoch
    assert {(t["member"], t["epoch"]) for t in report.trials} == {(m, e) for m in (0, 1)
                                                                  for e in range(3)}
    for t in report.trials:
        assert 0 <= t["score"] <= 1 and Policy.from_dict(t["policy"]) == levels_policy(
            SPACE, t["levels"])
    written = reference.save(str(tmp_path / "out" / "policy.json"))
    assert [os.path.basename(p) for p in written] == [
        "policy.json", "policy.report.json", "policy.png", "policy.schedule.json"]
    assert os.path.getsize(written[2]) > 1000
    schedule = PolicySchedule.load(written[3])
    assert schedule == reference.schedule and schedule.epochs == 3
    assert Policy.load(written[0]).sub_policies == schedule.final.sub_policies
    layer = AutoAugment(written[0], seed=0, jit_compile=False)
    assert layer(tf.random.uniform([4, 32, 32, 1], 0, 255), training=True).shape == (4, 32, 32, 1)


@pytest.mark.slow
def test_best_schedule_is_the_evolved_one_from_the_final_checkpoint(reference):
    settings = reference.report.settings
    best = settings["best_member"]
    entries = reference.schedule.entries
    assert len(entries) > 1 and entries[0][0] == 0
    assert all(step.p == 0 for sub in entries[0][1].sub_policies for step in sub)  # PBA's start
    assert any(step.p > 0 for sub in reference.policy.sub_policies for step in sub)
    assert settings["lineage"], "the best member's schedule came through an exploit"
    # the final policy is the one the best member trained its last epoch with
    last = max((t for t in reference.report.trials if t["member"] == best),
               key=lambda t: t["epoch"])
    assert last["epoch"] == 2 and levels_policy(SPACE, last["levels"]).sub_policies == \
        reference.policy.sub_policies
    # ...and every entry is what the members trained with at that epoch
    trained = {(t["member"], t["epoch"]): t["levels"] for t in reference.report.trials}
    for epoch, levels in ((e["epoch"], e["levels"]) for e in settings["schedule"]):
        assert levels in [trained[(m, epoch)] for m in (0, 1)]
    top = max(m["score"] for m in settings["members"])
    assert settings["best_score"] == top


@pytest.mark.slow
def test_same_seed_same_schedule(reference, task, tmp_path):
    again = search_policy(task, "pba", seed=0, workdir=str(tmp_path / "again"), **OPTIONS)
    assert again.schedule == reference.schedule
    assert scores(again) == scores(reference)
    assert again.report.settings["lineage"] == reference.report.settings["lineage"]


def test_resume_is_refused_with_the_reason(task, tmp_path):
    with pytest.raises(ValueError, match="resume=True is not supported by pba"):
        search_policy(task, "pba", seed=0, workdir=str(tmp_path), resume=True, **OPTIONS)
    assert not os.listdir(tmp_path)  # refused before anything starts


@pytest.mark.slow
def test_budget_too_small_for_one_epoch(task, cluster, tmp_path):
    with pytest.raises(ValueError, match="too small: no member finished one epoch"):
        search_policy(task, "pba", workdir=str(tmp_path), **{**OPTIONS, "minutes": 0.01})


@pytest.mark.slow
def test_cli_runs_pba_and_passes_its_options(cluster, tmp_path, capsys):
    from kaug.cli import main

    out = str(tmp_path / "policy.json")
    argv = ["search", "--method", "pba", "--dataset", "digits", "--per-class", "3",
            "--ops", "Rotate", "Invert", "--child-steps", "20", "--minutes", "0.01",
            "--option", "population=2", "--option", "epochs=2", "--option",
            "perturbation_interval=1", "--option", "folds=3", "--no-progress", "--out", out]
    assert main(argv) == 2  # reaches the search: the budget cannot fit an epoch
    assert "too small" in capsys.readouterr().err
    assert main(argv + ["--option", "slots=3"]) == 2
    assert "not a setting of pba" in capsys.readouterr().err
