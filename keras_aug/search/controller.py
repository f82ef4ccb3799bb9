"""AutoAugment's original search (Cubuk et al. 2019): a recurrent controller trained with PPO.

An LSTM controller emits a policy decision by decision: for every step of every sub-policy an op,
a probability bin (0, 0.1, ..., 1) and a magnitude level, each fed back as the next input. Every
sampled policy trains a fresh child model (`small_cnn`) on a stratified train part with one
`AutoAugment` layer whose table is swapped per child (no retrace); the child's validation accuracy
is the reward. After each batch of sampled policies, PPO (clipped surrogate, moving-average
baseline, entropy bonus) updates the controller. The result concatenates the sub-policies of the
`top` best sampled policies, as the paper did with its best 5.

The controller, its optimizer, the sampler's state and every finished child are checkpointed in
`workdir` after each child, so `resume=True` continues without retraining finished children.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.validation import check_integer, check_number
from keras_aug.policies.policy import Policy
from keras_aug.search.budget import Budget
from keras_aug.search.child import accuracy, compile_child, small_cnn, train_child
from keras_aug.search.report import SearchReport, SearchResult
from keras_aug.search.space import SearchSpace
from keras_aug.search.task import SearchTask, stratified_folds
from keras_aug.search.workdir import prepare_workdir

PROB_BINS = 11  # probabilities 0, 0.1, ..., 1
WEIGHTS = "controller.npz"
STATE = "state.json"


class Controller:
    """The policy generator: an LSTM that samples `(op, probability bin, level)` for each step of
    each sub-policy of `space`, feeding each decision back as an embedding, and its PPO update.

    Args:
        space: the `SearchSpace` whose policies it emits.
        units: LSTM units (100 in the paper).
        seed: weight initialization seed (uniform in [-0.1, 0.1] as in the paper).
        learning_rate: Adam's learning rate (3.5e-4 in the paper).
        clip: PPO's ratio clipping epsilon.
        entropy_weight: weight of the entropy bonus in the loss.
        epochs: PPO epochs over each batch of sampled policies.

    Example:
        >>> controller = Controller(SearchSpace(ops=("Rotate", "Invert"), num_sub_policies=2))
        >>> tokens, log_probs = controller.sample(3, np.random.default_rng(0))
        >>> tokens.shape, len(controller.policy(tokens[0]).sub_policies)
        ((3, 12), 2)
    """

    def __init__(self, space: SearchSpace, units: int = 100, seed: int = 0,
                 learning_rate: float = 3.5e-4, clip: float = 0.2, entropy_weight: float = 1e-5,
                 epochs: int = 4):
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.space = space
        self.units = check_integer("units", units)
        self.clip = check_number("clip", clip, 0.0, 1.0, low_open=True, high_open=True)
        self.entropy_weight = check_number("entropy_weight", entropy_weight, 0.0)
        self.epochs = check_integer("epochs", epochs)
        check_number("learning_rate", learning_rate, 0.0, low_open=True)
        # Decision t chooses from sizes[t % 3] options; token ids of all kinds share one
        # embedding table (offsets below), id 0 being the start token.
        self.sizes = (len(space.ops), PROB_BINS, space.magnitude_bins)
        self.offsets = (1, 1 + self.sizes[0], 1 + self.sizes[0] + self.sizes[1])
        self.length = 3 * space.num_sub_policies * space.num_steps
        init = lambda k: keras.initializers.RandomUniform(-0.1, 0.1, seed=int(seed) * 10 + k)
        self.embedding = keras.layers.Embedding(1 + sum(self.sizes), units,
                                                embeddings_initializer=init(0))
        # One LSTM: run over a whole sequence when scoring (teacher forcing), and step by step
        # through its cell when sampling.
        self.lstm = keras.layers.LSTM(units, return_sequences=True, kernel_initializer=init(1),
                                      recurrent_initializer=init(2))
        self.heads = [keras.layers.Dense(n, kernel_initializer=init(3 + i))
                      for i, n in enumerate(self.sizes)]
        self.embedding.build((None,))
        self.lstm.build((None, self.length, units))
        self.cell = self.lstm.cell
        self._shift = np.array([self.offsets[t % 3] for t in range(self.length)], np.int32)
        for head in self.heads:
            head.build((None, units))
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.variables)
        self._update_fn = None

    @property
    def variables(self) -> list:
        return (self.embedding.trainable_variables + self.lstm.trainable_variables
                + [v for head in self.heads for v in head.trainable_variables])

    def _step(self, ids, states, t: int):
        h, states = self.cell(self.embedding(ids), states)
        return self.heads[t % 3](h), states

    def _zero_states(self, n):
        return [tf.zeros([n, self.units]), tf.zeros([n, self.units])]

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`n` policies as decision indices `(n, length)` (op, p bin, level per step, row-major)
        and their log-probabilities `(n,)`; all randomness comes from `rng`."""
        n = check_integer("n", n)
        ids, states = tf.zeros([n], tf.int32), self._zero_states(n)
        tokens = np.zeros((n, self.length), np.int32)
        log_prob = np.zeros(n, np.float64)
        for t in range(self.length):
            logits, states = self._step(ids, states, t)
            logp = tf.nn.log_softmax(tf.cast(logits, tf.float64)).numpy()
            cdf = np.cumsum(np.exp(logp), axis=-1)
            u = rng.random(n)[:, None] * cdf[:, -1:]
            choice = np.minimum((cdf < u).sum(-1), self.sizes[t % 3] - 1)
            tokens[:, t] = choice
            log_prob += logp[np.arange(n), choice]
            ids = tf.constant(choice + self.offsets[t % 3], tf.int32)
        return tokens, log_prob

    def log_prob(self, tokens) -> tuple[tf.Tensor, tf.Tensor]:
        """Log-probability `(n,)` of each row of `tokens` under the controller, and the summed
        entropy `(n,)` of its decision distributions along that row."""
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        start = tf.zeros_like(tokens[:, :1])
        inputs = tf.concat([start, tokens[:, :-1] + self._shift[:-1]], axis=1)
        hidden = self.lstm(self.embedding(inputs))  # (n, length, units)
        total, entropy = 0.0, 0.0
        for kind, head in enumerate(self.heads):  # op, probability, level decisions
            logp = tf.nn.log_softmax(head(hidden[:, kind::3]))
            total += tf.reduce_sum(tf.gather(logp, tokens[:, kind::3], batch_dims=2), -1)
            entropy -= tf.reduce_sum(tf.exp(logp) * logp, [-2, -1])
        return total, entropy

    def update(self, tokens: np.ndarray, old_log_prob: np.ndarray,
               advantages: np.ndarray) -> float:
        """`epochs` PPO steps on a batch: maximize the clipped surrogate
        `min(r A, clip(r, 1 - clip, 1 + clip) A)` (r the probability ratio to the sampling-time
        controller) plus `entropy_weight` x entropy; returns the last loss."""
        if self._update_fn is None:
            self._update_fn = tf.function(self._ppo_step, reduce_retracing=True)
        tokens = tf.constant(tokens, tf.int32)
        old = tf.constant(old_log_prob, tf.float32)
        adv = tf.constant(advantages, tf.float32)
        for _ in range(self.epochs):
            loss = self._update_fn(tokens, old, adv)
        return float(loss)

    def _ppo_step(self, tokens, old, adv):
        with tf.GradientTape() as tape:
            logp, entropy = self.log_prob(tokens)
            ratio = tf.exp(logp - old)
            surrogate = tf.minimum(ratio * adv,
                                   tf.clip_by_value(ratio, 1 - self.clip, 1 + self.clip) * adv)
            loss = -tf.reduce_mean(surrogate) - self.entropy_weight * tf.reduce_mean(entropy)
        grads = tape.gradient(loss, self.variables)
        self.optimizer.apply(grads, self.variables)
        return loss

    def policy(self, row, name: str = "") -> Policy:
        """The `Policy` of one row of decision indices."""
        row = np.asarray(row).reshape(-1, 3)
        return self.space.policy([(int(op), p / (PROB_BINS - 1), float(level))
                                  for op, p, level in row], name=name)

    def save(self, path: str) -> None:
        """Weights and optimizer state to an `.npz` file."""
        arrays = [np.asarray(v) for v in self.variables + list(self.optimizer.variables)]
        np.savez(path, *arrays)

    def load(self, path: str) -> None:
        """Restore what `save` wrote."""
        with np.load(path) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        targets = self.variables + list(self.optimizer.variables)
        if len(arrays) != len(targets):
            raise ValueError(f"{path!r} holds {len(arrays)} arrays, the controller has "
                             f"{len(targets)} variables")
        for v, a in zip(targets, arrays):
            v.assign(a)


class _Deadline(keras.callbacks.Callback):
    """Stops a child's training when the budget runs out (the child is then discarded)."""

    def __init__(self, budget: Budget):
        super().__init__()
        self.budget, self.hit, self.steps = budget, False, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.budget.expired():
            self.hit, self.model.stop_training = True, True


def search(
    task: SearchTask,
    *,
    minutes: float = 10.0,
    seed: int = 0,
    workdir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    batch: int = 8,
    top: int = 5,
    folds: int = 5,
    units: int = 100,
    learning_rate: float = 3.5e-4,
    clip: float = 0.2,
    entropy_weight: float = 1e-5,
    ppo_epochs: int = 4,
    baseline_decay: float = 0.95,
    max_children: int | None = None,
) -> SearchResult:
    """Search a policy for `task` with AutoAugment's PPO-trained controller in at most `minutes`.

    Args:
        task: the images, space and child budget (`task.child`: every child's training).
        minutes: wall-clock budget; a child that cannot finish in it is stopped and discarded,
            and the best policies so far are returned.
        seed: controller, sampling, split and children are seeded: a run repeats exactly.
        workdir: where the controller checkpoint and finished children live (default: a new
            temporary directory, so no resume).
        resume: continue the search in `workdir` (an existing search there is an error
            otherwise).
        progress: show a progress bar (one unit per child).
        batch: policies sampled per controller update.
        top: best sampled policies whose sub-policies make the result (5 in the paper).
        folds: the validation part is one of `folds` stratified folds (1/folds of each class).
        units, learning_rate, clip, entropy_weight, ppo_epochs: see `Controller`.
        baseline_decay: decay of the reward's exponential moving average (the PPO baseline).
        max_children: stop after this many children in total (resumed ones count), if given.

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=10,
        ...                                child=ChildConfig(steps=200))        # doctest: +SKIP
        >>> result = search(task, minutes=5, workdir="runs/autoaugment")       # doctest: +SKIP
        >>> layer = keras_aug.layers.AutoAugment(result.policy)                # doctest: +SKIP
    """
    start = time.monotonic()
    if not isinstance(task, SearchTask):
        raise TypeError(f"task must be a SearchTask, got {type(task).__name__}")
    check_number("minutes", minutes, 0.0, low_open=True)
    check_integer("seed", seed, 0)
    if max_children is not None:
        check_integer("max_children", max_children)
    settings = {"batch": check_integer("batch", batch), "top": check_integer("top", top),
                "folds": check_integer("folds", folds, 2), "units": units,
                "learning_rate": learning_rate, "clip": clip, "entropy_weight": entropy_weight,
                "ppo_epochs": ppo_epochs,
                "baseline_decay": check_number("baseline_decay", baseline_decay, 0.0, 1.0,
                                               high_open=True),
                "seed": int(seed), "space": task.space.to_dict(), "child": asdict(task.child),
                "images": int(len(task.images))}
    controller = Controller(task.space, units, seed, learning_rate, clip, entropy_weight,
                            ppo_epochs)
    train, val = stratified_folds(task.labels, folds, seed)[0]
    workdir = prepare_workdir(workdir, task, settings, resume, growable=("top",),
                              prefix="kaug-autoaugment-")
    state = _load_state(workdir, controller, seed)
    trials = state["trials"]
    layer = task.space.layer(seed=seed, jit_compile=False)
    model, initial = _child_model(task, seed)
    budget = Budget(minutes, total=max_children, desc="autoaugment: children", progress=progress)
    stopped = False
    try:
        while max_children is None or len(trials) < max_children:
            if not state["pending"]:
                rng = np.random.default_rng()
                rng.bit_generator.state = state["rng"]
                tokens, logp = controller.sample(batch, rng)
                state.update(rng=rng.bit_generator.state, pending=tokens.tolist(),
                             pending_log_prob=logp.tolist(), pending_rewards=[])
                _save_state(workdir, controller, state)
            done = len(state["pending_rewards"])
            row = state["pending"][done]
            policy = controller.policy(row)
            seconds = _child_seconds(trials)
            if seconds is not None and seconds > budget.remaining():
                stopped = True
                break
            began = time.monotonic()
            layer.policy = policy
            layer.reseed(seed)
            for variable, value in zip(initial[0], initial[1]):  # a fresh child, same program
                variable.assign(value)
            deadline = _Deadline(budget)
            train_child(*task.subset(train), task.num_classes, task.child, seed, augment=layer,
                        callbacks=[deadline], model=model)
            if deadline.hit:
                if not trials:
                    took = (time.monotonic() - began) * task.child.steps / max(1, deadline.steps)
                    raise ValueError(
                        f"minutes={minutes:g} is too small: one child of {task.child.steps} "
                        f"steps takes about {took:.0f} s (it reached step {deadline.steps} when "
                        f"the budget ran out); give at least {took / 60 * 1.2 + 0.1:.1f} "
                        f"minutes, or fewer child steps")
                stopped = True
                break
            reward = accuracy(model, *task.subset(val))
            trials.append({"trial": len(trials), "group": "controller", "score": reward,
                           "batch": state["batches"], "tokens": list(map(int, row)),
                           "seconds": round(time.monotonic() - began, 3),
                           "policy": policy.to_dict()})
            state["pending_rewards"].append(reward)
            if len(state["pending_rewards"]) == len(state["pending"]):
                _ppo_update(controller, state, baseline_decay)
            _save_state(workdir, controller, state)
            budget.update(best=f"{max(t['score'] for t in trials):.3f}", reward=f"{reward:.3f}")
    finally:
        budget.close()
    if not trials:
        raise ValueError(f"minutes={minutes:g} left no time to train a single child; raise "
                         f"minutes")
    best = sorted(trials, key=lambda t: (-t["score"], t["trial"]))[:top]
    chosen = [sub for t in best for sub in Policy.from_dict(t["policy"]).sub_policies]
    unique = tuple(dict.fromkeys(chosen))
    report = SearchReport(
        "autoaugment", int(seed), time.monotonic() - start,
        [{k: v for k, v in t.items() if k != "tokens"} for t in trials],
        [[asdict(s) for s in sub] for sub in unique],
        {**settings, "workdir": workdir, "max_children": max_children,
         "baseline": state["baseline"], "controller_updates": state["batches"]},
        stopped_early=stopped, score_name="validation accuracy of the child")
    return SearchResult(task.space.policy_from_sub_policies(unique, name="autoaugment"), report)


def _child_model(task: SearchTask, seed: int):
    """One compiled child and the initial values of its weights, dropout seed and optimizer:
    restoring them re-initializes the child without retracing or recompiling its train step."""
    model = compile_child(small_cnn(task.image_shape, task.num_classes, seed), task.child)
    model.optimizer.build(model.trainable_variables)
    variables = list(model.variables) + list(model.optimizer.variables)
    return model, (variables, [np.array(v) for v in variables])


def _ppo_update(controller: Controller, state: dict, decay: float) -> None:
    rewards = np.asarray(state["pending_rewards"], np.float64)
    baseline = state["baseline"]
    if baseline is None:  # the first batch: its own mean
        baseline = float(rewards.mean())
    controller.update(np.asarray(state["pending"], np.int32),
                      np.asarray(state["pending_log_prob"]), rewards - baseline)
    state["baseline"] = decay * baseline + (1 - decay) * float(rewards.mean())
    state["batches"] += 1
    state.update(pending=[], pending_log_prob=[], pending_rewards=[])


def _child_seconds(trials: list) -> float | None:
    """The longest a finished child took (how long the next one may take)."""
    return max((t["seconds"] for t in trials), default=None)


def _load_state(workdir: str, controller: Controller, seed: int) -> dict:
    path = os.path.join(workdir, STATE)
    if not os.path.exists(path):
        return {"trials": [], "batches": 0, "baseline": None, "pending": [],
                "pending_log_prob": [], "pending_rewards": [],
                "rng": np.random.default_rng(seed).bit_generator.state}
    try:
        with open(path) as f:
            state = json.load(f)
        controller.load(os.path.join(workdir, WEIGHTS))
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"cannot read the controller checkpoint in {workdir!r}: {e}") from None
    return state


def _save_state(workdir: str, controller: Controller, state: dict) -> None:
    """Write the checkpoint atomically (weights first, then the state that refers to them)."""
    weights = os.path.join(workdir, WEIGHTS)
    controller.save(weights + ".tmp.npz")
    os.replace(weights + ".tmp.npz", weights)
    path = os.path.join(workdir, STATE)
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)
