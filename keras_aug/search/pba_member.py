"""The Ray side of `pba`: population members as `tune.Trainable`s, the TensorFlow workers that
train them, the scheduler and the stopper.

Why two kinds of process. Ray Tune's synchronous PBT pauses every member at every
synchronization point, and Tune keeps at most one paused actor for reuse once all trials exist
(`TuneController._maybe_cache_trial_actor`: "the search is over and no more trials are
staged"), so each member restarts in a new process after each perturbation. Measured here, a
process that imports TensorFlow and builds the child model takes 8-15 s before its first step,
more than an epoch of a small child. So a member (`Member`) holds only numpy arrays (its weights,
optimizer state and schedule) and imports neither TensorFlow nor keras_aug (this module is
pickled by value, see `register`); it sends its state to one of `Child` workers, long-lived Ray
actors each holding a compiled `small_cnn`, an `AutoAugment` layer and an input pipeline, for
one epoch at a time. A `ChildPool` lends each member a worker for its epoch.

Everything an epoch does is a function of (state, member, epoch, policy): which worker runs it
does not change the result.
"""
from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import ray
from ray import tune
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

ARRAYS = "state.npz"
MEMBER = "member.json"


def register() -> None:
    """Pickle this module's classes by value, so that Ray's member processes unpickle them
    without importing keras_aug (whose import loads TensorFlow)."""
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def member_name(trial) -> str:
    """Trial (and directory) name: `member<k>`. A member's identity comes from its name, not its
    config: an exploit replaces the config with (a perturbed copy of) the top member's."""
    return f"member{trial.config['member']}"


def member_of(name) -> int:
    """The member index of a trial name or directory (`.../member3` -> 3)."""
    match = re.search(r"member(\d+)$", str(name).rstrip("/"))
    if match is None:
        raise RuntimeError(f"pba: cannot tell the member from the trial name {name!r}")
    return int(match.group(1))


def read_checkpoint(checkpoint, trial_name) -> dict:
    """The record (`member`, `epoch`, `score`, `history`, `lineage`) of the member `trial_name`
    from its latest `checkpoint` (after an exploit that has not trained yet, the copied member's:
    the weights and schedule it inherited)."""
    with checkpoint.as_directory() as path, open(os.path.join(path, MEMBER)) as f:
        saved = json.load(f)
    member = member_of(trial_name)
    if saved["member"] != member:
        saved["lineage"] = saved["lineage"] + [{"epoch": saved["epoch"], "from": saved["member"],
                                                "to": member}]
    return {**saved, "member": member}


class SynchPBT(PopulationBasedTraining):
    """Ray's synchronous `PopulationBasedTraining`, able to continue a restored experiment.

    `Tuner.restore` rebuilds the scheduler as it was pickled when the search started: every
    member then looks untrained to it, and the next synchronization point stays at
    `perturbation_interval`. Members restored at epoch t > 0 report t + 1 and wait there for a
    synchronization that never comes (measured: a resumed search sat idle until its time budget
    ran out). Here a member added with a checkpoint starts at that checkpoint's epoch and the
    next synchronization point is the first one after the least advanced member. A member that
    had finished keeps the defaults, so that it runs, reports `done` and leaves. A fresh search
    is unaffected (no member has a checkpoint when added).

    A member behind the next synchronization point (restored from an older checkpoint than
    another's, or from none) trains on until it reaches it: Ray's synchronous mode perturbs
    as soon as no live member is behind the reporting one, so a member at epoch 1 reporting
    while the others waited at 2 was made to exploit them at 1 and skipped an epoch (seen in a
    resumed search on a loaded machine).
    """

    def __init__(self, *args, epochs: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._epochs = epochs
        self._restored: dict = {}

    def on_trial_result(self, tune_controller, trial, result):
        if result.get(self._time_attr, self._next_perturbation_sync) < self._next_perturbation_sync:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_add(self, tune_controller, trial):
        super().on_trial_add(tune_controller, trial)
        checkpoint = trial.checkpoint
        if checkpoint is None:
            return
        epoch = read_checkpoint(checkpoint, str(trial))["epoch"]
        if epoch >= self._epochs:
            return
        state = self._trial_state[trial]
        interval = self._perturbation_interval
        state.last_train_time = epoch
        state.last_perturbation_time = epoch // interval * interval
        self._restored[trial] = epoch
        self._next_perturbation_sync = max(
            self._burn_in_period, interval,
            min(e // interval * interval + interval for e in self._restored.values()))


class Deadline(tune.Stopper):
    """Stops the experiment at the wall-clock deadline in `path`, once the members have recorded
    `max_member_epochs` epochs in `records`, or when no member has recorded an epoch for
    `STALL_SECONDS` plus 5 times the longest epoch so far; the last also writes
    `<path>.stalled`, and the search raises. (Each run of `search`, resumed ones too, writes its
    own limits to `path`: Ray restores this stopper from the first run's pickle.)"""

    STALL_SECONDS = 240.0

    def __init__(self, path: str, records: str):
        self.path, self.records = path, records

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        try:
            with open(self.path) as f:
                limits = json.load(f)
        except (OSError, ValueError):
            return False
        now = time.time()
        if now >= float(limits.get("deadline", float("inf"))):
            return True
        rows, last = [], float(limits.get("started", now))
        if os.path.exists(self.records):
            with open(self.records) as f:
                rows = [line for line in f if line.endswith("\n")]
            last = max(last, os.path.getmtime(self.records))
        most = limits.get("max_member_epochs")
        if most is not None and len(rows) >= most:
            return True
        longest = max((json.loads(r)["seconds"] for r in rows), default=0.0)
        if now - last > self.STALL_SECONDS + 5 * longest:
            with open(self.path + ".stalled", "w") as f:
                json.dump({"seconds_without_progress": round(now - last, 1),
                           "epochs_recorded": len(rows)}, f)
            return True
        return False


class ChildPool:
    """Lends the `Child` workers to members, one member at a time each (an async Ray actor)."""

    def __init__(self, size: int):
        import asyncio

        self._free = asyncio.Queue()
        for i in range(size):
            self._free.put_nowait(i)

    async def acquire(self) -> int:
        return await self._free.get()

    async def release(self, index: int) -> None:
        self._free.put_nowait(index)


class Child:
    """A TensorFlow worker (a Ray actor): the task's split, one compiled `small_cnn`, one
    `AutoAugment` layer and one input pipeline, built once. A member's epoch assigns the member's
    variables, the epoch's batch order and augmentation seed and the member's policy (a table:
    no retrace, no recompile), trains, and returns the variables."""

    def __init__(self, workdir: str, threads: int):
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialized in this process
            pass
        from keras_aug.layers import AutoAugment
        from keras_aug.search.child import ChildConfig, compile_child, small_cnn
        from keras_aug.search.pba import levels_policy, num_levels
        from keras_aug.search.space import SearchSpace
        from keras_aug.search.task import stratified_folds
        from keras_aug.search.workdir import SETTINGS, TASK

        with open(os.path.join(workdir, SETTINGS)) as f:
            settings = json.load(f)
        arrays = np.load(os.path.join(workdir, TASK))
        images, labels = arrays["images"], arrays["labels"]
        self.num_classes = int(arrays["num_classes"])
        self.space = SearchSpace(**{**settings["space"], "ops": tuple(settings["space"]["ops"])})
        self.levels_policy = levels_policy
        config = ChildConfig(**settings["child"])
        self.seed = settings["seed"]
        train, val = stratified_folds(labels, settings["folds"], self.seed)[0]
        self.train_size = len(train)
        self.val = (images[val].astype(np.float32), labels[val])
        steps, batch = config.steps // settings["epochs"], config.batch_size
        self.shape = images.shape[1:]
        self.model = compile_child(small_cnn(self.shape, self.num_classes, self.seed), config)
        self.model.optimizer.build(self.model.trainable_variables)
        self.variables = list(self.model.variables) + list(self.model.optimizer.variables)
        self.fresh_optimizer = [np.array(v) for v in self.model.optimizer.variables]
        self.layer = AutoAugment(levels_policy(self.space, [0] * num_levels(self.space)),
                                 ops=list(self.space.ops), seed=self.seed, jit_compile=False)
        # The epoch's batches are index slices of `order`, assigned before each epoch: one
        # dataset (one trace of the augmentation) serves every member and epoch.
        self.order = tf.Variable(tf.zeros([steps * batch], tf.int32), trainable=False)
        x = tf.constant(images[train].astype(np.float32))
        y = tf.constant(labels[train].astype(np.int32))

        def take(step):
            index = self.order[step * batch:(step + 1) * batch]
            return tf.gather(x, index), tf.gather(y, index)

        # sequential maps: the layer's per-batch draw happens in batch order (reproducible)
        self.dataset = (tf.data.Dataset.range(steps).map(take)
                        .map(lambda images, labels: (self.layer(images, training=True), labels))
                        .prefetch(1))

    def initial_state(self, member: int) -> list:
        """Member `member`'s initial weights (and dropout seed) and a fresh optimizer."""
        from keras_aug.search.child import small_cnn

        fresh = small_cnn(self.shape, self.num_classes, self.seed * 1000 + member)
        return [np.array(v) for v in fresh.variables] + self.fresh_optimizer

    def epoch(self, state: list, member: int, epoch: int, levels) -> dict:
        """Train one epoch of `member` from `state` under the policy of `levels`."""
        from keras_aug.search.child import accuracy

        began = time.monotonic()
        if len(state) != len(self.variables):
            raise ValueError(f"a pba member state holds {len(state)} arrays, the child has "
                             f"{len(self.variables)} variables")
        for variable, value in zip(self.variables, state):
            variable.assign(value)
        draws = np.random.SeedSequence([self.seed, member, epoch]).generate_state(2)
        rng = np.random.default_rng(draws[1])
        need = int(self.order.shape[0])
        repeats = -(-need // self.train_size)
        order = np.concatenate([rng.permutation(self.train_size) for _ in range(repeats)])[:need]
        self.order.assign(order.astype(np.int32))
        self.layer.policy = self.levels_policy(self.space, levels)  # a table: no retrace
        self.layer.reseed(int(draws[0]))
        history = self.model.fit(self.dataset, epochs=1, verbose=0, shuffle=False)
        return {"state": [np.array(v) for v in self.variables],
                "score": accuracy(self.model, *self.val),
                "loss": float(history.history["loss"][-1]),
                "seconds": round(time.monotonic() - began, 3)}


def start_children(workdir: str, name: str, size: int, threads: int,
                   timeout: float) -> tuple[list, bool]:
    """`size` `Child` workers and their `ChildPool`, as named Ray actors (members look them up
    by `name`). Returns the handles (kill them when the search ends) and whether all were ready
    within `timeout` seconds (a worker that failed to start raises here)."""
    children = [ray.remote(Child).options(num_cpus=0, name=f"{name}-child{i}")
                .remote(workdir, threads) for i in range(size)]
    pool = ray.remote(ChildPool).options(num_cpus=0, name=f"{name}-pool").remote(size)
    actors = children + [pool]
    ready = [a.__ray_ready__.remote() for a in actors]
    done, _ = ray.wait(ready, num_returns=len(ready), timeout=max(0.0, timeout))
    ray.get(done)
    return actors, len(done) == len(ready)


class Member(tune.Trainable):
    """One member of the population: `step` trains one epoch (on a borrowed `Child`) under the
    member's current policy and reports `val_accuracy` and `epoch`; its checkpoint holds the
    weights, the optimizer state and the schedule so far (`history`: `[first epoch, levels]`
    entries), so an exploit hands the top member's schedule to the member that copies it."""

    def setup(self, config):
        self._start(config)

    def reset_config(self, new_config) -> bool:
        self._start(new_config)
        return True

    def _start(self, config) -> None:
        self.member = member_of(self.trial_name)
        self.levels = [int(v) for v in config["levels"]]
        self.epochs, self.records, self.pool_name = (config["epochs"], config["records"],
                                                     config["pool"])
        self.state, self.epoch_done, self.score = None, 0, None
        self.history, self.lineage, self.inherited = [], [], None

    def _on_child(self, method: str, *args):
        pool = ray.get_actor(f"{self.pool_name}-pool")
        index = ray.get(pool.acquire.remote())
        try:
            child = ray.get_actor(f"{self.pool_name}-child{index}")
            return ray.get(getattr(child, method).remote(*args))
        finally:
            # wait for it: Tune may end this process right after the step, and a release still
            # in flight would be lost with it, leaving the pool a worker short for good
            ray.get(pool.release.remote(index))

    def step(self):
        if self.epoch_done >= self.epochs:  # resumed after it had finished
            return {"val_accuracy": self.score, "epoch": self.epoch_done, "done": True}
        epoch = self.epoch_done
        if self.state is None:
            self.state = self._on_child("initial_state", self.member)
        if not self.history or self.history[-1][1] != self.levels:
            self.history.append([epoch, list(self.levels)])
        out = self._on_child("epoch", self.state, self.member, epoch, self.levels)
        self.state, self.epoch_done, self.score = out["state"], epoch + 1, out["score"]
        record = {"member": self.member, "epoch": epoch, "score": out["score"],
                  "loss": out["loss"], "levels": self.levels, "exploited": self.inherited,
                  "seconds": out["seconds"], "finished": time.time()}
        self.inherited = None
        with open(self.records, "a") as f:  # one short line per append: atomic on POSIX
            f.write(json.dumps(record) + "\n")
        # PBT's clock and the stop are this epoch count, not Ray's `training_iteration`: after an
        # exploit or a restore Ray's counter can come from another checkpoint's metrics.
        return {"val_accuracy": out["score"], "loss": out["loss"], "epoch": epoch + 1,
                "done": epoch + 1 >= self.epochs}

    def save_checkpoint(self, checkpoint_dir: str):
        if self.state is not None:
            np.savez(os.path.join(checkpoint_dir, ARRAYS), *self.state)
        with open(os.path.join(checkpoint_dir, MEMBER), "w") as f:
            json.dump({"member": self.member, "epoch": self.epoch_done, "score": self.score,
                       "levels": self.levels, "history": self.history,
                       "lineage": self.lineage}, f)
        return None

    def load_checkpoint(self, checkpoint_dir: str):
        with open(os.path.join(checkpoint_dir, MEMBER)) as f:
            saved = json.load(f)
        self.state = None
        if os.path.exists(os.path.join(checkpoint_dir, ARRAYS)):
            with np.load(os.path.join(checkpoint_dir, ARRAYS)) as data:
                self.state = [data[f"arr_{i}"] for i in range(len(data.files))]
        self.epoch_done, self.score = saved["epoch"], saved["score"]
        self.history, self.lineage = saved["history"], saved["lineage"]
        if saved["member"] != self.member:  # an exploit: the top member's weights and schedule
            self.inherited = saved["member"]
            self.lineage = self.lineage + [{"epoch": self.epoch_done, "from": saved["member"],
                                            "to": self.member}]
        # the explored levels (set by reset_config) apply from the next epoch on
