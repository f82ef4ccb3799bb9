"""Population Based Augmentation (Ho et al. 2019): a population of short training runs whose
augmentation schedules evolve, on Ray Tune's `PopulationBasedTraining`.

A member's hyperparameters are PBA's: for every op of the space, `SLOTS` = 2 slots of (probability
level 0..10 -> p = level / 10, magnitude level 0..magnitude_bins - 1), all 0 at the start. They
form a `Policy` of `2 x len(ops)` one-step sub-policies, run by one `AutoAugment` layer in the
member's input pipeline: each image draws one (op, slot) and applies it with the slot's
probability at its magnitude. (PBA's own augmenter applied 0-2 of the slots to an image; here
the probability means what it will mean when `AutoAugment` applies the result.) A new policy is
a table assigned to the live layer: no retrace.

Every member trains `small_cnn` epoch by epoch (`task.child.steps` split into `epochs`) on the
train part of a stratified split and is scored by its accuracy on the held-out part. Every
`perturbation_interval` epochs, synchronously, PBT's bottom quantile copies the weights,
optimizer state and schedule so far of a top member (exploit), and perturbs the copied
hyperparameters with PBA's rule (explore, `PBAExplore`): each value is resampled uniformly with
probability 0.2, else shifted by 0-3 levels up or down, clipped.

The result is the schedule of the best member at the end (highest accuracy; ties go to the
longer schedule, then the later member), read from its last checkpoint: the policies it followed
epoch by epoch, including what it inherited through exploits. `SearchResult.policy` is the
schedule's last policy.

Ray runs in `workdir/ray` (its checkpoints, one per member and epoch, and the experiment state);
`resume=True` restores that experiment with `Tuner.restore`, and every member continues from its
last checkpoint. The members are thin Ray Tune trainables; the TensorFlow work runs in
long-lived worker actors (see `pba_member` for why).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import warnings
from dataclasses import asdict

import numpy as np

from keras_aug.core.validation import check_integer, check_number
from keras_aug.policies.policy import Policy, PolicyOp
from keras_aug.policies.registry import OPS
from keras_aug.search.budget import Budget
from keras_aug.search.report import SearchReport, SearchResult
from keras_aug.search.schedule import PolicySchedule
from keras_aug.search.space import SearchSpace
from keras_aug.search.task import SearchTask, stratified_folds
from keras_aug.search.workdir import prepare_workdir

__all__ = ["PBAExplore", "SLOTS", "PROB_LEVELS", "levels_policy", "search"]

SLOTS = 2  # (probability, magnitude) slots per op, as in PBA
PROB_LEVELS = 10  # probability levels 0..10 -> p = level / 10
EXPERIMENT = "pba"
RECORDS = "epochs.jsonl"  # one line per member and epoch, written by the members
DEADLINE = "deadline.json"  # this run's wall-clock deadline, read by the stopper
EXPLORE_STATE = "explore_rng.json"
INSTALL = 'pip install "kaug[pba]"'


def num_levels(space: SearchSpace) -> int:
    """The length of a member's hyperparameter vector: (p, magnitude) x SLOTS x ops."""
    return 2 * SLOTS * len(space.ops)


def levels_policy(space: SearchSpace, levels, name: str = "") -> Policy:
    """The `Policy` of a hyperparameter vector `[p, m, p, m, ...]` (op-major, `SLOTS` slots per
    op): one one-step sub-policy per (op, slot) with p = level / 10 and the magnitude level.

    Example:
        >>> space = SearchSpace(ops=("Rotate", "Invert"))
        >>> policy = levels_policy(space, [3, 5, 0, 0, 10, 2, 0, 0])
        >>> policy.sub_policies[0], policy.sub_policies[2]
        ((PolicyOp(op='Rotate', p=0.3, magnitude=5.0),), (PolicyOp(op='Invert', p=1.0, magnitude=None),))
    """
    levels = [int(v) for v in levels]
    if len(levels) != num_levels(space):
        raise ValueError(f"levels: expected {num_levels(space)} values (p, magnitude) x {SLOTS} "
                         f"slots x {len(space.ops)} ops, got {len(levels)}")
    subs = []
    for i, op in enumerate(space.ops):
        for s in range(SLOTS):
            p, m = levels[2 * (SLOTS * i + s)], levels[2 * (SLOTS * i + s) + 1]
            magnitude = float(min(m, space.top_level)) if OPS[op].has_magnitude else None
            subs.append((PolicyOp(op, min(p, PROB_LEVELS) / PROB_LEVELS, magnitude),))
    return space.policy_from_sub_policies(subs, name=name)


class PBAExplore:
    """PBA's explore step (`custom_explore_fn` of Ray's PBT): each value of `config["levels"]`
    is resampled uniformly with probability `resample` (p in 0..10, magnitude in 0..top_level),
    else shifted by 0, 1, 2 or 3 levels (uniform) up or down (even odds), clipped.

    The draws come from one seeded generator; with `state_path` its state is kept in that file
    after every call, so a resumed search continues the sequence instead of repeating it.

    Args:
        seed: the generator's seed.
        top_level: the highest magnitude level (`SearchSpace.top_level`).
        resample: probability of resampling a value (0.2 in PBA).
        state_path: JSON file holding the generator's state between runs.

    Example:
        >>> explore = PBAExplore(seed=0, top_level=9)
        >>> explore({"levels": [0, 0, 0, 0]})["levels"]
        [0, 2, 2, 3]
    """

    def __init__(self, seed: int, top_level: int, resample: float = 0.2,
                 state_path: str | None = None):
        self.seed = check_integer("seed", seed, 0)
        self.top_level = check_integer("top_level", top_level)
        self.resample = check_number("resample", resample, 0.0, 1.0)
        self.state_path = state_path
        self._rng = None

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
            if self.state_path and os.path.exists(self.state_path):
                with open(self.state_path) as f:
                    self._rng.bit_generator.state = json.load(f)
        return self._rng

    def explore(self, levels) -> list[int]:
        """PBA's perturbation of one hyperparameter vector `[p, m, p, m, ...]`."""
        rng = self._generator()
        new = []
        for i, value in enumerate(levels):
            top = PROB_LEVELS if i % 2 == 0 else self.top_level
            if rng.random() < self.resample:
                new.append(int(rng.integers(0, top + 1)))
            else:
                amount = int(rng.integers(0, 4))
                new.append(max(0, value - amount) if rng.random() < 0.5 else min(top, value + amount))
        if self.state_path:
            with open(self.state_path + ".tmp", "w") as f:
                json.dump(rng.bit_generator.state, f)
            os.replace(self.state_path + ".tmp", self.state_path)
        return new

    def __call__(self, config: dict) -> dict:
        return {**config, "levels": self.explore(config["levels"])}

    def __getstate__(self):  # Ray pickles the scheduler; the generator is rebuilt from the file
        return {**self.__dict__, "_rng": None}


def search(
    task: SearchTask,
    *,
    minutes: float = 10.0,
    seed: int = 0,
    workdir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    population: int = 4,
    epochs: int = 10,
    perturbation_interval: int = 2,
    quantile: float = 0.25,
    folds: int = 5,
    cpus: int | None = None,
    max_member_epochs: int | None = None,
) -> SearchResult:
    """Search an augmentation schedule for `task` with Population Based Augmentation.

    Args:
        task: the images, space (its ops, magnitude bins and magnitude space; PBA's policy shape
            is fixed: 2 slots per op) and child budget (`task.child.steps` per member, split
            into `epochs`).
        minutes: wall-clock budget, Ray's start included; when it runs out the members stop and
            the best schedule so far is returned.
        seed: split, members' weights and data order, augmentation draws, exploit and explore are
            seeded (PBT runs synchronously), so a search repeats exactly.
        workdir: where Ray keeps the experiment (checkpoints, state) and the per-epoch records
            (default: a new temporary directory, so no resume).
        resume: not supported yet (raises): a resumed synchronous PBT could skip epochs.
        progress: show a progress bar (one unit per member epoch).
        population: members trained in parallel (>= 2; PBA used 16).
        epochs: epochs of every member; the schedule has one policy per epoch range.
        perturbation_interval: epochs between exploit/explore steps (PBA: 3).
        quantile: the fraction of the population that exploits (bottom) and is copied (top).
        folds: the validation part is one of `folds` stratified folds (1/folds of each class).
        cpus: CPUs Ray may use (default: all); each member gets `cpus // population` (at least 1)
            and runs as many TensorFlow threads.
        max_member_epochs: stop this run once the members have trained this many epochs in
            all (resumed ones count); `resume=True` continues from there.

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=10)              # doctest: +SKIP
        >>> result = search(task, minutes=5, workdir="runs/pba")                # doctest: +SKIP
        >>> result.schedule.save("pba.schedule.json")                          # doctest: +SKIP
    """
    start = time.monotonic()
    if not isinstance(task, SearchTask):
        raise TypeError(f"task must be a SearchTask, got {type(task).__name__}")
    check_number("minutes", minutes, 0.0, low_open=True)
    check_integer("seed", seed, 0)
    check_integer("population", population, 2)
    check_integer("epochs", epochs, 2)
    check_integer("perturbation_interval", perturbation_interval)
    if perturbation_interval >= epochs:
        raise ValueError(f"perturbation_interval must be < epochs={epochs} (no member would ever "
                         f"exploit or explore), got {perturbation_interval}")
    check_number("quantile", quantile, 0.0, 0.5, low_open=True)
    if task.child.steps < epochs:
        raise ValueError(f"task.child.steps={task.child.steps} cannot be split into epochs="
                         f"{epochs} (each epoch needs at least one step); raise the steps or "
                         f"lower epochs")
    cpus = (os.cpu_count() or 1) if cpus is None else check_integer("cpus", cpus)
    if max_member_epochs is not None:
        check_integer("max_member_epochs", max_member_epochs)
    stratified_folds(task.labels, folds, seed)  # says how many images per class are needed
    if resume:
        raise ValueError("resume=True is not supported by pba in this version: a resumed "
                         "synchronous PBT let a member skip epochs on a loaded machine; start a "
                         "new search (a new workdir)")
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise ImportError(f"the pba search runs on Ray Tune, which is not installed ({e}); "
                          f"install it with: {INSTALL}") from None
    from keras_aug.search import pba_member

    settings = {"population": population, "epochs": epochs,
                "perturbation_interval": perturbation_interval, "quantile": float(quantile),
                "folds": folds, "seed": int(seed), "space": task.space.to_dict(),
                "child": asdict(task.child), "images": int(len(task.images))}
    workdir = os.path.abspath(prepare_workdir(workdir, task, settings, resume, prefix="kaug-pba-"))
    storage = os.path.join(workdir, "ray")
    experiment = os.path.join(storage, EXPERIMENT)
    records_path = os.path.join(workdir, RECORDS)
    restoring = resume and _can_restore(experiment)
    if not restoring:
        for stale in (records_path, os.path.join(workdir, EXPLORE_STATE)):  # a run Ray never saved
            if os.path.exists(stale):
                os.remove(stale)
    deadline = os.path.join(workdir, DEADLINE)
    if os.path.exists(deadline + ".stalled"):
        os.remove(deadline + ".stalled")
    limits = {"started": time.time(), "deadline": time.time() + minutes * 60.0,
              "max_member_epochs": max_member_epochs}
    _write_limits(deadline, limits)
    threads = max(1, cpus // population)
    workers = max(1, min(population, cpus // threads))
    budget = Budget(minutes, total=population * epochs, desc="pba: population", progress=progress)
    started_ray = not ray.is_initialized()
    saved_random = random.getstate()
    watcher = _RecordWatcher(records_path, budget)
    actors = []
    try:
        if started_ray:
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"env_vars": _worker_env()})
        ray_seconds = time.monotonic() - start
        pba_member.register()
        name = _actor_prefix(workdir)
        actors, ready = pba_member.start_children(workdir, name, workers, threads,
                                                  timeout=budget.remaining())
        startup_seconds = time.monotonic() - start
        if not ready or budget.expired():
            raise ValueError(_too_small(minutes, ray_seconds, startup_seconds,
                                        task.child.steps // epochs, ready))
        random.seed(seed)  # PBT picks the member to copy with `random.choice`
        trainable = tune.with_resources(pba_member.Member, {"cpu": threads})
        if restoring:
            from ray.tune.tune_config import ResumeConfig

            # Members stopped by the time budget are TERMINATED for Ray: resume them too (a
            # member that had finished its epochs returns at once).
            again = ResumeConfig.ResumeType.RESUME
            with _quiet_tune():
                tuner = tune.Tuner.restore(experiment, trainable, _resume_config=ResumeConfig(
                    finished=again, unfinished=again, errored=again))
        else:
            tuner = _new_tuner(tune, pba_member, trainable, task.space, settings, workdir,
                               storage, name)
        # The stall guard counts from here: starting the TensorFlow workers can take minutes
        # on a loaded machine, and is not Tune failing to schedule the members.
        _write_limits(deadline, {**limits, "started": time.time()})
        watcher.start()
        with _quiet_tune():
            grid = tuner.fit()
            ended = [(r.error, r.checkpoint, r.path) for r in grid]
    finally:
        watcher.stop()
        budget.close()
        random.setstate(saved_random)
        for actor in actors:
            ray.kill(actor)
        if started_ray:
            ray.shutdown()
    errors = [error for error, _, _ in ended if error is not None]
    if errors:
        raise RuntimeError(f"a pba member failed: {errors[0]}") from errors[0]
    if os.path.exists(deadline + ".stalled"):
        with open(deadline + ".stalled") as f:
            stall = json.load(f)
        raise RuntimeError(
            f"pba: Ray Tune stopped scheduling the members (no epoch recorded for "
            f"{stall['seconds_without_progress']:.0f} s after {stall['epochs_recorded']}); the "
            f"search was stopped; run it again, on a less loaded machine or with more minutes")
    members = [m for m in (pba_member.read_checkpoint(checkpoint, path)
                           for _, checkpoint, path in ended if checkpoint is not None)
               if m["score"] is not None]
    records = _read_records(records_path)
    if not members or not records:
        raise ValueError(_too_small(minutes, ray_seconds, startup_seconds,
                                    task.child.steps // epochs))
    return _result(task.space, settings, members, records, workdir, cpus, start)


def _new_tuner(tune, pba_member, trainable, space, settings, workdir, storage, name):
    pbt = pba_member.SynchPBT(
        epochs=settings["epochs"], time_attr="epoch", metric="val_accuracy",
        mode="max",
        perturbation_interval=settings["perturbation_interval"],
        quantile_fraction=settings["quantile"], synch=True, log_config=False,
        custom_explore_fn=PBAExplore(settings["seed"], space.top_level,
                                     state_path=os.path.join(workdir, EXPLORE_STATE)))
    stop = pba_member.Deadline(os.path.join(workdir, DEADLINE), os.path.join(workdir, RECORDS))
    param_space = {"member": tune.grid_search(list(range(settings["population"]))),
                   "levels": [0] * num_levels(space), "epochs": settings["epochs"],
                   "records": os.path.join(workdir, RECORDS), "pool": name}
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(scheduler=pbt, reuse_actors=True,
                                    trial_name_creator=pba_member.member_name,
                                    trial_dirname_creator=pba_member.member_name),
        run_config=tune.RunConfig(
            name=EXPERIMENT, storage_path=storage, stop=stop, verbose=0,
            # PBT exploits point into other members' checkpoints: keep them all (with a
            # bound, Ray deleted checkpoints an exploit still pointed to).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None, checkpoint_frequency=1,
                                                    checkpoint_at_end=True),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=True)))


def _write_limits(path: str, limits: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(limits, f)
    os.replace(path + ".tmp", path)  # the stopper never reads half a file


def _can_restore(experiment: str) -> bool:
    from ray import tune

    return os.path.isdir(experiment) and tune.Tuner.can_restore(experiment)


@contextlib.contextmanager
def _quiet_tune():
    """No console tables from Tune and no per-trial CSV/JSON/TensorBoard logs (the members'
    records are the log); the environment is restored afterwards."""
    import logging

    quiet = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    saved = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    tune_log = logging.getLogger("ray.tune")
    level = tune_log.level
    tune_log.setLevel(logging.ERROR)  # e.g. "Failed to fetch metrics": there are no CSV logs
    try:
        yield
    finally:
        tune_log.setLevel(level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_env() -> dict:
    """What Ray's worker processes need to import keras_aug the way this process does."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH", "")
    return {"KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, path) if p)}


def _actor_prefix(workdir: str) -> str:
    """The names of a search's worker actors (members find them by name; a resumed search of the
    same workdir starts them under the same names)."""
    import hashlib

    return "kaug-pba-" + hashlib.sha1(workdir.encode()).hexdigest()[:12]


def _too_small(minutes, ray_seconds, startup_seconds, steps, ready=True) -> str:
    workers = (f"its TensorFlow workers were ready after {startup_seconds:.0f} s" if ready else
               f"its TensorFlow workers, which import TensorFlow and build the child model, "
               f"were not ready after {startup_seconds:.0f} s")
    return (f"minutes={minutes:g} is too small: no member finished one epoch ({steps} steps) in "
            f"the budget (starting Ray took {ray_seconds:.0f} s, {workers}); give at least "
            f"{max(1.0, startup_seconds / 60 * 3):.1f} minutes, or fewer child steps")


class _RecordWatcher:
    """Moves the progress bar as members append their epoch records (the members run in Ray's
    worker processes)."""

    def __init__(self, path: str, budget: Budget):
        self.path, self.budget = path, budget
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._seen = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            records = _read_records(self.path, dedupe=False)
            if len(records) > self._seen:
                best = max(r["score"] for r in records)
                self.budget.update(len(records) - self._seen, best=f"{best:.3f}")
                self._seen = len(records)


def _read_records(path: str, dedupe: bool = True) -> list[dict]:
    """The members' epoch records in completion order; an epoch redone after a resume keeps its
    last record."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.endswith("\n")]
    if not dedupe:
        return rows
    last = {(r["member"], r["epoch"]): r for r in rows}
    return sorted(last.values(), key=lambda r: r["finished"])


def _result(space, settings, members, records, workdir, cpus, start) -> SearchResult:
    epochs = settings["epochs"]
    # the best at the end; ties: the longer schedule (it explored), then the later member
    best = max(members, key=lambda m: (m["score"], len(m["history"]), m["member"]))
    schedule = PolicySchedule(tuple((int(e), levels_policy(space, lv, name=f"pba epoch {e}"))
                                    for e, lv in best["history"]), epochs=epochs)
    policy = Policy(schedule.final.sub_policies, schedule.final.magnitude_bins,
                    schedule.final.space, name="pba")
    trials = []
    for i, r in enumerate(records):
        trials.append({"trial": i, "group": f"member {r['member']}", "member": r["member"],
                       "epoch": r["epoch"], "score": r["score"], "loss": r.get("loss"),
                       "exploited": r.get("exploited"), "seconds": r["seconds"],
                       "levels": r["levels"],
                       "policy": levels_policy(space, r["levels"]).to_dict()})
    stopped = any(m["epoch"] < epochs for m in members) or len(members) < settings["population"]
    # Synchronous PBT: every member trains every epoch (an exploit copies a member at the same
    # epoch). A gap means Ray let a member run past a synchronization point: the search is still
    # a search, but not the one its seed describes.
    trained: dict = {}
    for r in records:
        trained.setdefault(r["member"], set()).add(r["epoch"])
    synchronized = all(done == set(range(max(done) + 1)) for done in trained.values())
    if not synchronized:
        warnings.warn("pba: a member skipped epochs (Ray Tune broke the synchronous PBT "
                      "barrier); this search will not repeat exactly under its seed",
                      RuntimeWarning, stacklevel=3)
    report = SearchReport(
        "pba", settings["seed"], time.monotonic() - start, trials,
        [[asdict(s) for s in sub] for sub in policy.sub_policies],
        {**settings, "workdir": workdir, "cpus": cpus, "synchronized": synchronized,
         "best_member": best["member"],
         "best_score": best["score"], "best_epochs": best["epoch"],
         "lineage": best["lineage"],
         "members": [{"member": m["member"], "epochs": m["epoch"], "score": m["score"],
                      "schedule_entries": len(m["history"])} for m in members],
         "schedule": [{"epoch": int(e), "levels": lv} for e, lv in best["history"]]},
        stopped_early=stopped, score_name="validation accuracy of the member")
    return SearchResult(policy, report, schedule)
