"""Fast AutoAugment (Lim et al. 2019): policies found by density matching, no retraining per
candidate.

The data is split into K stratified folds; fold k's model trains on its D_M without
augmentation; Optuna's TPE then proposes candidate policies, each scored by how well fold k's
model still recognizes its held-out D_A once augmented (`DensityScorer`); the top policies of
every fold are merged. Trials live in an Optuna journal file in `workdir`, so a search with a seed
is repeatable, `resume=True` continues it without repeating finished trials, and several worker
processes (`workers=`, or other `kaug search --resume` runs on the same `workdir`) share them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np

from keras_aug.core.validation import check_integer
from keras_aug.search.budget import Budget
from keras_aug.search.child import ChildConfig, DensityScorer, small_cnn, train_child
from keras_aug.search.report import SearchReport, SearchResult
from keras_aug.search.space import SearchSpace
from keras_aug.search.task import SearchTask, stratified_folds
from keras_aug.search.workdir import SETTINGS, TASK, prepare_workdir

STORAGE = "study.journal"
READY = "folds.ready"
GROWABLE = ("trials", "top")  # a resumed search may ask for more of these


def search(
    task: SearchTask,
    *,
    minutes: float = 10.0,
    seed: int = 0,
    workdir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    folds: int = 5,
    trials: int = 200,
    top: int = 10,
    draws: int = 4,
    workers: int = 1,
) -> SearchResult:
    """Search a policy for `task` with Fast AutoAugment in at most `minutes`.

    Args:
        task: the images, space and child budget.
        minutes: wall-clock budget; the search stops cleanly and keeps the best trials so far.
        seed: folds, models and TPE are seeded: one worker repeats the same search.
        workdir: where trials (Optuna journal), fold models and settings live (default: a new
            temporary directory, so no resume).
        resume: continue the search in `workdir` (an existing search there is an error
            otherwise).
        progress: show a progress bar.
        folds: K, the number of stratified folds (each class needs at least K images).
        trials: TPE trials per fold (B; the paper used 200).
        top: policies kept per fold (N; the result has top x folds x sub-policies entries).
        draws: augmented copies per held-out image when scoring.
        workers: processes searching together on the journal (trials are then not repeatable).

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=10)              # doctest: +SKIP
        >>> result = search(task, minutes=5, workdir="runs/fast_aa")            # doctest: +SKIP
        >>> layer = keras_aug.layers.AutoAugment(result.policy)                 # doctest: +SKIP
    """
    import optuna

    start = time.monotonic()
    settings = {"folds": check_integer("folds", folds, 2), "trials": check_integer("trials", trials),
                "top": check_integer("top", top), "draws": check_integer("draws", draws),
                "seed": int(seed), "space": task.space.to_dict(), "child": asdict(task.child),
                "images": int(len(task.images))}
    check_integer("workers", workers)
    splits = stratified_folds(task.labels, folds, seed)
    workdir = prepare_workdir(workdir, task, settings, resume, growable=GROWABLE,
                              prefix="kaug-fast-aa-")
    budget = Budget(minutes, total=folds * trials, desc="fast_aa: fold models",
                    progress=progress)
    # Helpers start now, so their TensorFlow start-up overlaps the fold models' training; they
    # wait for READY, written once every fold model is saved.
    for i in range(1, workers):
        if os.path.exists(os.path.join(workdir, f"worker{i}.ready")):
            os.remove(os.path.join(workdir, f"worker{i}.ready"))
    helpers = [subprocess.Popen([sys.executable, "-m", "keras_aug.search.fast_aa", workdir,
                                 str(i), str(budget.remaining())]) for i in range(1, workers)]
    try:
        models = _fold_models(task, splits, seed, workdir, budget)
        open(os.path.join(workdir, READY), "w").close()
        budget.describe("fast_aa: scoring policies")
        _wait_for(helpers, workdir, budget)
        stopped = _search_folds(task, splits, models, settings, workdir, budget, worker=0)
        for helper in helpers:
            if helper.wait() != 0:
                raise RuntimeError(f"a fast_aa worker process exited with {helper.returncode}")
    finally:
        budget.close()
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(workdir)
    report_trials, chosen, baselines = [], [], []
    for k in range(folds):
        study = optuna.load_study(study_name=f"fold{k}", storage=storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        baselines.append(study.user_attrs.get("identity_score"))
        for t in done:
            report_trials.append({"group": f"fold {k}", "score": t.value,
                                  "accuracy": t.user_attrs.get("accuracy"),
                                  "worker": t.user_attrs.get("worker"),
                                  "finished": t.datetime_complete.timestamp()})
        for t in sorted(done, key=lambda t: -t.value)[:top]:
            chosen.extend(task.space.suggest(optuna.trial.FixedTrial(t.params)).sub_policies)
    if not report_trials:
        raise ValueError(f"minutes={minutes:g} left no time to score a single candidate policy; "
                         f"raise minutes")
    report_trials.sort(key=lambda t: t.pop("finished"))
    for i, t in enumerate(report_trials):
        t["trial"] = i
    unique = tuple(dict.fromkeys(chosen))
    policy = task.space.policy_from_sub_policies(unique, name="fast_aa")
    report = SearchReport(
        "fast_aa", int(seed), time.monotonic() - start, report_trials,
        [[asdict(s) for s in sub] for sub in unique],
        {**settings, "workers": workers, "workdir": workdir, "identity_scores": baselines},
        stopped_early=stopped, score_name="held-out true-class probability (best of draws)")
    return SearchResult(policy, report)


def _storage(workdir: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = os.path.join(workdir, STORAGE)
    try:
        return JournalStorage(JournalFileBackend(path))
    except Exception as e:  # a corrupt or unwritable journal
        raise ValueError(f"cannot open the search storage {path!r}: {e}") from e


def _fold_models(task, splits, seed, workdir, budget):
    models, trained, began = [], 0, time.monotonic()
    for k, (train, _) in enumerate(splits):
        path = os.path.join(workdir, f"fold{k}.weights.h5")
        if os.path.exists(path):
            model = small_cnn(task.image_shape, task.num_classes, seed + k)
            model.load_weights(path)  # only scored, never trained again
        else:
            model, _ = train_child(*task.subset(train), task.num_classes, task.child, seed + k)
            trained += 1
            each = (time.monotonic() - began) / trained
            needed = budget.elapsed() + each * (len(splits) - k - 1)
            if needed > 0.9 * budget.seconds:
                raise ValueError(
                    f"minutes={budget.minutes:g} is too small: a fold model of "
                    f"{task.child.steps} steps takes {each:.0f} s and {len(splits)} are needed "
                    f"before any policy is scored; give at least "
                    f"{needed / 54 + 1:.1f} minutes, or fewer folds / child steps")
            model.save_weights(path)
        models.append(model)
    return models


def _wait_for(helpers, workdir: str, budget: Budget) -> None:
    """Wait (within the budget) until every helper has loaded the fold models, so that all
    workers score from the start."""
    for i, helper in enumerate(helpers, start=1):
        marker = os.path.join(workdir, f"worker{i}.ready")
        while not os.path.exists(marker) and helper.poll() is None and not budget.expired():
            time.sleep(0.2)


def _search_folds(task, splits, models, settings, workdir, budget, worker: int) -> bool:
    """Run this worker's share of every fold's TPE study; True if time ran out first."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage, seed, trials = _storage(workdir), settings["seed"], settings["trials"]
    space = task.space
    stopped = False
    for k, (_, held) in enumerate(splits):
        sampler = optuna.samplers.TPESampler(seed=seed * 1000 + k * 10 + worker)
        study = optuna.create_study(study_name=f"fold{k}", storage=storage, sampler=sampler,
                                    direction="maximize", load_if_exists=True)
        scorer = DensityScorer(models[k], space.layer(seed=seed, jit_compile=False),
                               *task.subset(held), draws=settings["draws"])
        if "identity_score" not in study.user_attrs:
            identity = space.policy([(0, 0.0, 0.0)] * (space.num_sub_policies * space.num_steps))
            study.set_user_attr("identity_score", scorer(identity, seed)[0])

        def objective(trial, scorer=scorer, k=k):
            probability, accuracy = scorer(space.suggest(trial), seed * 100003 + k * 7919
                                           + trial.number)
            trial.set_user_attr("accuracy", accuracy)
            trial.set_user_attr("worker", worker)
            return probability

        def complete() -> int:
            return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

        left_folds = len(splits) - k
        share = budget.remaining() / left_folds
        before = complete()
        if before < trials and share > 0:
            study.optimize(objective, timeout=share, callbacks=[
                MaxTrialsCallback(trials, states=(TrialState.COMPLETE,)),
                lambda study, trial: budget.update(fold=k, best=f"{study.best_value:.3f}")])
        if complete() < trials:
            stopped = True
    return stopped


def _worker_main(argv) -> None:
    """`python -m keras_aug.search.fast_aa WORKDIR INDEX SECONDS`: one more worker on a search
    whose fold models are trained."""
    workdir, index, seconds = argv[0], int(argv[1]), float(argv[2])
    with open(os.path.join(workdir, SETTINGS)) as f:
        settings = json.load(f)
    arrays = np.load(os.path.join(workdir, TASK))
    space = SearchSpace(**{**settings["space"], "ops": tuple(settings["space"]["ops"])})
    task = SearchTask(arrays["images"], arrays["labels"], int(arrays["num_classes"]), space,
                      ChildConfig(**settings["child"]))
    splits = stratified_folds(task.labels, settings["folds"], settings["seed"])
    budget = Budget(seconds / 60.0, progress=False)
    while not os.path.exists(os.path.join(workdir, READY)):
        if budget.expired():
            return
        time.sleep(0.5)
    models = _fold_models(task, splits, settings["seed"], workdir, budget)
    open(os.path.join(workdir, f"worker{index}.ready"), "w").close()
    _search_folds(task, splits, models, settings, workdir, budget, worker=index)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
