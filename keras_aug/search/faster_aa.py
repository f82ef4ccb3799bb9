"""Faster AutoAugment (Hataya et al. 2020): a differentiable policy, trained by gradient descent.

`DifferentiablePolicy` holds, for each of the space's sub-policies and stages, op logits over the
space's ops, per-op probabilities and per-op magnitudes in [0, 1]. Each image draws a
sub-policy; each stage picks one op by a straight-through Gumbel-softmax over its logits (the
forward pass applies exactly one op, the backward pass reaches every logit), applies it with a
straight-through relaxed Bernoulli gate of its probability, at its magnitude. The enhance ops
(Brightness, Color, Contrast, Sharpness) and the affine warps (Rotate, Shear*, Translate*)
are differentiable in their magnitude through `keras_aug.ops`; the others (Posterize,
Solarize, Cutout, Equalize, AutoContrast, Invert) pass gradients straight through: forward
`op(x)`, backward the identity with respect to the image and (for those with one) the magnitude.

The objective is the paper's: a critic (the search's small CNN with a score head and a class
head, WGAN-GP) tells augmented images from real ones; the policy minimizes the critic's
Wasserstein estimate plus `epsilon` x the cross-entropy of its augmented images under the class
head (so that augmented images keep their labels), while the critic maximizes the estimate
(its class head learns from real images, weight `epsilon`). Both use Adam. At the end each
stage keeps the op with the largest logit, its probability and its magnitude as a level.
"""
from __future__ import annotations

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.validation import check_integer, check_number
from keras_aug.ops import color as color_ops
from keras_aug.ops import erase as erase_ops
from keras_aug.ops import geometry as geometry_ops
from keras_aug.policies.policy import Policy
from keras_aug.policies.registry import OPS, op_parameter
from keras_aug.search.budget import Budget
from keras_aug.search.child import small_cnn
from keras_aug.search.report import SearchReport, SearchResult
from keras_aug.search.space import SearchSpace
from keras_aug.search.task import SearchTask
from keras_aug.search.workdir import prepare_workdir

__all__ = ["DIFFERENTIABLE_OPS", "DifferentiablePolicy", "apply_op", "critic_network", "search"]

CHECKPOINTS = "checkpoints"
TRIALS = "trials.json"
VALUE_RANGE = (0.0, 255.0)

# ops whose output is differentiable in their magnitude through keras_aug.ops
DIFFERENTIABLE_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
                      "Color", "Contrast", "Sharpness")
_ENHANCE = {"Brightness": color_ops.brightness, "Color": color_ops.saturation,
            "Contrast": color_ops.contrast, "Sharpness": color_ops.sharpness}
_PARAMETERLESS = {"AutoContrast": color_ops.autocontrast, "Equalize": color_ops.equalize,
                  "Invert": color_ops.invert}


def _straight_through(out: tf.Tensor, images: tf.Tensor, magnitude: tf.Tensor | None,
                      span: float) -> tf.Tensor:
    """`out` forward; backward the identity w.r.t. `images` and, if given, the magnitude (B,)
    (in units of the value range: d out / d magnitude = `span` per pixel)."""
    result = images + tf.stop_gradient(out - images)
    if magnitude is not None:
        result = result + span * tf.reshape(magnitude - tf.stop_gradient(magnitude), [-1, 1, 1, 1])
    return result


def apply_op(name: str, images: tf.Tensor, magnitude: tf.Tensor, sign: tf.Tensor,
             centers: tf.Tensor, space: str = "standard") -> tf.Tensor:
    """Op `name` on every image of a batch at per-image magnitudes, with gradients.

    Args:
        name: a registry op name.
        images: float32 `(B, H, W, C)` in 0..255.
        magnitude: `(B,)` normalized magnitudes in [0, 1].
        sign: `(B,)` +1/-1 for signed ops.
        centers: `(B, 2)` relative (y, x) Cutout centres in [0, 1).
        space: `"standard"` or `"wide"` magnitude ranges.

    Returns:
        The augmented batch; differentiable in `magnitude` for `DIFFERENTIABLE_OPS`, straight
        through (see `_straight_through`) for the others.

    Example:
        >>> x = tf.fill([2, 8, 8, 1], 100.0)
        >>> apply_op("Brightness", x, tf.constant([0.0, 1.0]), tf.ones([2]),
        ...          tf.zeros([2, 2]))[:, 0, 0, 0].numpy()
        array([100., 190.], dtype=float32)
    """
    height, width = images.shape[1], images.shape[2]
    low, high = VALUE_RANGE
    if name == "Identity":
        return images
    param = op_parameter(name, magnitude, sign, space=space, height=height, width=width,
                         value_range=VALUE_RANGE)
    if name in _ENHANCE:
        return _ENHANCE[name](images, param, VALUE_RANGE)
    if OPS[name].kind == "geometry":
        zero = tf.zeros_like(param)
        if name == "Rotate":
            matrix = geometry_ops.rotation_matrix(param * (math.pi / 180.0), height, width)
        elif name in ("ShearX", "ShearY"):
            shear = (param, zero) if name == "ShearX" else (zero, param)
            matrix = geometry_ops.shear_matrix(*shear, height, width)
        else:
            move = (param, zero) if name == "TranslateX" else (zero, param)
            matrix = geometry_ops.translation_matrix(*move)
        return geometry_ops.warp(images, matrix, fill_value=low)
    if name in _PARAMETERLESS:
        return _straight_through(_PARAMETERLESS[name](images, VALUE_RANGE), images, None, 0.0)
    if name == "Posterize":
        out = color_ops.posterize(images, param, VALUE_RANGE)
    elif name == "Solarize":
        out = color_ops.solarize(images, param, VALUE_RANGE)
    elif name == "SolarizeAdd":
        threshold = tf.fill(tf.shape(param), low + 128.0 / 255.0 * (high - low))
        out = color_ops.solarize_add(images, param, threshold, VALUE_RANGE)
    elif name == "Cutout":
        out = erase_ops.cutout(images, centers[:, 0] * height, centers[:, 1] * width, param,
                               param, low)
    else:  # pragma: no cover - the registry is closed
        raise AssertionError(f"apply_op: no implementation for {name}")
    return _straight_through(out, images, magnitude, high - low)


class DifferentiablePolicy(tf.Module):
    """A policy of `space.num_sub_policies` x `space.num_steps` stages whose op choice,
    probabilities and magnitudes are trainable (`op_logits`, `probabilities`, `magnitudes`,
    each `(sub-policies, steps, ops)`).

    Args:
        space: the `SearchSpace` (its ops, shape and magnitude space).
        temperature: of the relaxed one-hot op choice and the relaxed Bernoulli gates (> 0).
        seed: seeds the per-image draws (sub-policy, Gumbel and gate noise, signs, centres).

    Example:
        >>> space = SearchSpace(ops=("Rotate", "Brightness"), num_sub_policies=2)
        >>> augmenter = DifferentiablePolicy(space, seed=0)
        >>> augmenter(tf.zeros([4, 8, 8, 1])).shape
        TensorShape([4, 8, 8, 1])
        >>> len(augmenter.policy().sub_policies)
        2
    """

    def __init__(self, space: SearchSpace, temperature: float = 0.05, seed: int = 0):
        super().__init__(name="differentiable_policy")
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.space = space
        self.temperature = check_number("temperature", temperature, 0.0, low_open=True)
        shape = (space.num_sub_policies, space.num_steps, len(space.ops))
        self.op_logits = tf.Variable(tf.zeros(shape), name="op_logits")
        self.probabilities = tf.Variable(tf.fill(shape, 0.5), name="probabilities")
        self.magnitudes = tf.Variable(tf.fill(shape, 0.5), name="magnitudes")
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        """Augment float images `(B, H, W, C)` in 0..255 (one sub-policy per image)."""
        images = tf.convert_to_tensor(images, tf.float32)
        b = tf.shape(images)[0]
        which = self.generator.uniform([b], 0, self.space.num_sub_policies, dtype=tf.int32)
        x = images
        for k in range(self.space.num_steps):
            x = self._stage(x, k, which)
        return x

    def _stage(self, x: tf.Tensor, k: int, which: tf.Tensor) -> tf.Tensor:
        n, tau, gen = len(self.space.ops), self.temperature, self.generator
        b = tf.shape(x)[0]
        logits = tf.gather(self.op_logits[:, k], which)  # (B, N)
        probs = tf.gather(self.probabilities[:, k], which)
        # kept off 0 and 1 for the logit, with the gradient passed through (so that a
        # probability projected onto 0 or 1 can still move back)
        probs = probs + tf.stop_gradient(tf.clip_by_value(probs, 1e-4, 1.0 - 1e-4) - probs)
        magnitudes = tf.gather(self.magnitudes[:, k], which)
        eps = 1e-6
        # straight-through Gumbel-softmax: exactly one op forward, every logit backward
        u = gen.uniform([b, n], eps, 1.0 - eps)
        soft = tf.nn.softmax((logits - tf.math.log(-tf.math.log(u))) / tau, axis=-1)
        weights = tf.one_hot(tf.argmax(soft, -1), n) + soft - tf.stop_gradient(soft)
        # straight-through relaxed Bernoulli gates of each op's probability
        v = gen.uniform([b, n], eps, 1.0 - eps)
        noise = tf.math.log(v) - tf.math.log(1.0 - v)
        gate = tf.sigmoid((tf.math.log(probs) - tf.math.log(1.0 - probs) + noise) / tau)
        gate = tf.cast(gate > 0.5, tf.float32) + gate - tf.stop_gradient(gate)
        sign = tf.where(gen.uniform([b]) < 0.5, -1.0, 1.0)
        centers = gen.uniform([b, 2])
        out = tf.zeros_like(x)
        # every op runs on the whole batch (weights 0 except the chosen one): vectorized,
        # len(ops) passes per stage, and the backward pass reaches every op's logit
        for i, name in enumerate(self.space.ops):
            y = apply_op(name, x, magnitudes[:, i], sign, centers, self.space.space)
            g = tf.reshape(gate[:, i], [-1, 1, 1, 1])
            out += tf.reshape(weights[:, i], [-1, 1, 1, 1]) * (x + g * (y - x))
        return out

    def project(self) -> None:
        """Clip probabilities and magnitudes back into [0, 1] (after an optimizer step)."""
        self.probabilities.assign(tf.clip_by_value(self.probabilities, 0.0, 1.0))
        self.magnitudes.assign(tf.clip_by_value(self.magnitudes, 0.0, 1.0))

    def policy(self, name: str = "faster_aa") -> Policy:
        """The discrete policy: per stage the op of largest logit, its probability and its
        magnitude as level `magnitude x (magnitude_bins - 1)`."""
        ops = np.argmax(self.op_logits.numpy(), axis=-1)
        probs, mags = self.probabilities.numpy(), self.magnitudes.numpy()
        steps = [(int(ops[i, k]), float(probs[i, k, ops[i, k]]),
                  float(mags[i, k, ops[i, k]]) * self.space.top_level)
                 for i in range(ops.shape[0]) for k in range(ops.shape[1])]
        return self.space.policy(steps, name=name)


def critic_network(image_shape, num_classes: int, seed: int) -> keras.Model:
    """The critic: `small_cnn`'s convolutional trunk (0..255 input) with two heads, the
    critic's score `(B, 1)` and class logits `(B, num_classes)`.

    Args:
        image_shape: `(H, W, C)`.
        num_classes: classes of the class head.
        seed: initializer seed.

    Example:
        >>> critic = critic_network((32, 32, 1), 10, seed=0)
        >>> [tuple(o.shape) for o in critic.outputs]
        [(None, 1), (None, 10)]
    """
    trunk = small_cnn(image_shape, num_classes, seed)
    inputs = keras.Input(image_shape)
    x = inputs
    for layer in trunk.layers[:-2]:  # up to GlobalAveragePooling2D, without dropout and logits
        x = layer(x)
    return keras.Model(inputs, [keras.layers.Dense(1, name="score")(x),
                                keras.layers.Dense(num_classes, name="classes")(x)],
                       name="faster_aa_critic")


def search(
    task: SearchTask,
    *,
    minutes: float = 10.0,
    seed: int = 0,
    workdir: str | None = None,
    resume: bool = False,
    progress: bool = True,
    steps: int = 2000,
    batch_size: int = 32,
    epsilon: float = 0.1,
    gp_weight: float = 10.0,
    temperature: float = 0.05,
    policy_lr: float = 1e-3,
    critic_lr: float = 1e-3,
    log_every: int = 10,
    checkpoint_every: int = 100,
) -> SearchResult:
    """Search a policy for `task` with Faster AutoAugment for `steps` steps or `minutes`.

    Args:
        task: the images and the search space (`task.child` is not used: no child model).
        minutes: wall-clock budget; the search stops cleanly after the step running then.
        seed: seeds the critic, the batches and the policy's draws: a search is repeatable.
        workdir: where settings, checkpoints and logged points live (default: a new temporary
            directory, so no resume).
        resume: continue the search in `workdir` from its last checkpoint (its steps are not
            redone; `steps` may be raised to train further).
        progress: show a progress bar.
        steps: optimizer steps (each one critic and one policy update).
        batch_size: real and augmented images per step (each).
        epsilon: weight of the classification loss (0.1 in the paper).
        gp_weight: WGAN-GP gradient penalty weight.
        temperature: of the relaxed op choice and probability gates.
        policy_lr, critic_lr: Adam learning rates.
        log_every: steps between logged points of the report.
        checkpoint_every: steps between checkpoints in `workdir`.

    The report logs, every `log_every` steps, a point of group `critic` whose score is
    -(Wasserstein estimate) of the critic (0 when augmented images look real) and a point of
    group `augmenter` whose score is the accuracy of the critic's class head on augmented
    images, both averaged over those steps.

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=10)              # doctest: +SKIP
        >>> result = search(task, minutes=5, workdir="runs/faster_aa")          # doctest: +SKIP
        >>> layer = keras_aug.layers.AutoAugment(result.policy)                 # doctest: +SKIP
    """
    start = time.monotonic()
    if not isinstance(task, SearchTask):
        raise TypeError(f"task must be a SearchTask, got {type(task).__name__}")
    steps = check_integer("steps", steps)
    log_every = check_integer("log_every", log_every)
    checkpoint_every = check_integer("checkpoint_every", checkpoint_every)
    settings = {"batch_size": check_integer("batch_size", batch_size),
                "epsilon": check_number("epsilon", epsilon, 0.0),
                "gp_weight": check_number("gp_weight", gp_weight, 0.0),
                "temperature": check_number("temperature", temperature, 0.0, low_open=True),
                "policy_lr": check_number("policy_lr", policy_lr, 0.0, low_open=True),
                "critic_lr": check_number("critic_lr", critic_lr, 0.0, low_open=True),
                "log_every": log_every, "seed": int(seed), "space": task.space.to_dict(),
                "images": int(len(task.images))}
    workdir = prepare_workdir(workdir, task, settings, resume, prefix="kaug-faster-aa-")

    augmenter = DifferentiablePolicy(task.space, temperature, seed)
    critic = critic_network(task.image_shape, task.num_classes, seed)
    policy_opt = keras.optimizers.Adam(policy_lr, beta_1=0.0, beta_2=0.999)
    critic_opt = keras.optimizers.Adam(critic_lr, beta_1=0.0, beta_2=0.999)
    data = tf.random.Generator.from_seed(seed + 1)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoint = tf.train.Checkpoint(augmenter=augmenter, critic=critic, policy_opt=policy_opt,
                                     critic_opt=critic_opt, data=data, step=step)
    manager = tf.train.CheckpointManager(checkpoint, os.path.join(workdir, CHECKPOINTS), 1)
    trials: list[dict] = []
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        with open(os.path.join(workdir, TRIALS)) as f:
            trials = json.load(f)
    resumed_from = int(step.numpy())

    train_step = _train_step(task, augmenter, critic, policy_opt, critic_opt, data, settings)
    budget = Budget(minutes, total=steps, desc="faster_aa", progress=progress)
    budget.update(min(resumed_from, steps))
    sums, count = np.zeros(4), 0  # since the last logged point (of this process)
    try:
        while int(step.numpy()) < steps and not budget.expired():
            sums += np.array([float(v) for v in train_step()])
            count += 1
            step.assign_add(1)
            done = int(step.numpy())
            budget.update(wasserstein=f"{sums[0] / count:.2f}")
            if done % log_every == 0:
                w, ce, acc, real_acc = (float(v) for v in sums / count)
                trials += [{"group": "critic", "score": -w, "step": done,
                            "real_accuracy": real_acc},
                           {"group": "augmenter", "score": acc, "step": done,
                            "cross_entropy": ce}]
                sums, count = np.zeros(4), 0
            if done % checkpoint_every == 0 or done == steps:
                _save(manager, workdir, trials)
    finally:
        budget.close()
    done = int(step.numpy())
    if done % checkpoint_every and done != steps:
        _save(manager, workdir, trials)
    if done == 0:
        raise ValueError(f"minutes={minutes:g} left no time for a single step; raise minutes")
    for i, t in enumerate(trials):
        t["trial"] = i
    policy = augmenter.policy()
    report = SearchReport(
        "faster_aa", int(seed), time.monotonic() - start, trials,
        [[{"op": s.op, "p": s.p, "magnitude": s.magnitude} for s in sub]
         for sub in policy.sub_policies],
        {**settings, "steps": steps, "steps_done": done, "resumed_from": resumed_from,
         "checkpoint_every": checkpoint_every, "workdir": workdir},
        stopped_early=done < steps,
        score_name="critic: -(Wasserstein estimate); augmenter: class-head accuracy on "
                   "augmented images")
    return SearchResult(policy, report)


def _save(manager: tf.train.CheckpointManager, workdir: str, trials: list[dict]) -> None:
    manager.save()
    path = os.path.join(workdir, TRIALS)
    with open(path + ".tmp", "w") as f:
        json.dump(trials, f)
    os.replace(path + ".tmp", path)


def _train_step(task, augmenter, critic, policy_opt, critic_opt, data, settings):
    """One simultaneous update of the critic (maximize W - GP, class head on real images) and
    the policy (minimize -critic(augmented) + epsilon x CE(augmented)); returns
    (W estimate, CE of augmented images, class-head accuracy on augmented and on real)."""
    images = tf.constant(task.images.astype(np.float32))
    labels = tf.constant(task.labels.astype(np.int32))
    b, n = settings["batch_size"], len(task.images)
    epsilon, gp_weight = settings["epsilon"], settings["gp_weight"]
    span = VALUE_RANGE[1] - VALUE_RANGE[0]
    policy_vars = augmenter.trainable_variables

    def cross_entropy(y, logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    @tf.function
    def step():
        index = data.uniform([2 * b], 0, n, dtype=tf.int32)
        x, y = tf.gather(images, index), tf.gather(labels, index)
        real, real_y, source, source_y = x[:b], y[:b], x[b:], y[b:]
        with tf.GradientTape() as critic_tape, tf.GradientTape() as policy_tape:
            augmented = augmenter(source)
            real_score, real_logits = critic(real, training=False)
            fake_score, fake_logits = critic(augmented, training=False)
            wasserstein = tf.reduce_mean(real_score) - tf.reduce_mean(fake_score)
            with policy_tape.stop_recording():
                alpha = data.uniform([b, 1, 1, 1])
                mixed = (real + alpha * (tf.stop_gradient(augmented) - real)) / span
                with tf.GradientTape() as inner:
                    inner.watch(mixed)
                    mixed_score, _ = critic(mixed * span, training=False)
                grad = inner.gradient(mixed_score, mixed)
                norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]) + 1e-12)
                penalty = tf.reduce_mean(tf.square(norm - 1.0))
                critic_loss = (-wasserstein + gp_weight * penalty
                               + epsilon * cross_entropy(real_y, real_logits))
            fake_ce = cross_entropy(source_y, fake_logits)
            policy_loss = -tf.reduce_mean(fake_score) + epsilon * fake_ce
        critic_vars = critic.trainable_variables
        critic_opt.apply_gradients(zip(critic_tape.gradient(critic_loss, critic_vars),
                                       critic_vars))
        grads = policy_tape.gradient(policy_loss, policy_vars)
        grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                 for g, v in zip(grads, policy_vars)]
        policy_opt.apply_gradients(zip(grads, policy_vars))
        augmenter.project()
        def accuracy(logits, y):
            return tf.reduce_mean(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == y,
                                          tf.float32))

        return (wasserstein, fake_ce, accuracy(fake_logits, source_y),
                accuracy(real_logits, real_y))

    return step
