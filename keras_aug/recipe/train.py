"""`train()`: decide from the data and the budget, validate every choice, train, explain, export.

The order of work: hold out a stratified part of the training images; train the default
candidate on the rest (the measured best default for small data: mild affine geometry, label
smoothing 0.1, a BatchNorm CNN, cosine learning rate) while timing it; with the budget left, try
the other candidates (flips for photos, MixUp, a searched policy) and keep one only if it is
strictly better on the held-out images; then train the winner again on every training image
(the final model) and evaluate the dataset's test split once, at the very end.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.validation import check_integer, check_number
from keras_aug.recipe.data import RecipeData, holdout
from keras_aug.recipe.models import recipe_cnn

BATCH_SIZE = 25
LEARNING_RATE = 2e-3
LABEL_SMOOTHING = 0.1
EVALS = 10  # validation points on the learning curve
MIN_STEPS, MAX_STEPS, STEPS_PER_IMAGE = 800, 6000, 10
ADAPTIVE_START = 0.5  # of a range twice the mild default's: where the adaptive candidate starts


@dataclass
class Decision:
    """One choice `train` made: what it is about, what was chosen, and why.

    Attributes:
        topic: what the choice is about (`"model"`, `"augmentation"`, `"steps"`, ...).
        choice: what was chosen.
        why: the reason, with the numbers it rests on.

    Example:
        >>> Decision("label smoothing", "0.1", "measured +2.5 points").topic
        'label smoothing'
    """

    topic: str
    choice: str
    why: str


@dataclass
class Candidate:
    """A training setup tried on the held-out images (scores filled in once it ran).

    Attributes:
        name: what the setup is, e.g. `"mild affine + MixUp (alpha 0.2)"`.
        build: `seed -> batch augmentation` taking `(images, labels)`, or `None`.
        why: why it is a candidate.
        accuracy, loss: on the held-out images; `None` if the budget did not allow it.
        seconds: its training time.
        soft_labels: it mixes labels, so only a trainer with one-hot labels can use it.
        adaptive: `AdaptiveAugmentation` sets its strength each epoch from the held-out
            images; the refit replays those strengths (`strengths`).
        strengths: the strength of each epoch of its validated run (adaptive only).

    Example:
        >>> Candidate("none", lambda seed: None, "the control").accuracy is None
        True
    """

    name: str
    build: Callable[[int], Any]  # seed -> batch augmentation (takes (images, labels)) or None
    why: str
    accuracy: float | None = None
    loss: float | None = None
    seconds: float | None = None
    soft_labels: bool = False  # needs one-hot labels (mixing): the CNN from scratch only
    adaptive: bool = False
    strengths: list[float] | None = None


@dataclass
class TrainReport:
    """What `train` decided, measured and wrote (`report.md` renders it).

    Attributes:
        decisions: every `Decision`, in the order taken.
        candidates: the setups tried (and those the budget left out).
        validation: held-out `accuracy` and `loss` of the validated run.
        history: the validated run's epoch logs (learning curves).
        diagnosis: the regime of those curves (`keras_aug.diagnose.Diagnosis`).
        test: `{"accuracy": ...}` of the final model on the dataset's test split, or `None`.
        confusion: the test confusion matrix (rows true, columns predicted), or `None`.
        class_names: in label order.
        seconds: wall time of the whole call.
        steps: optimizer steps of each validated run.
        refit: whether the final model was retrained on every image.
        files: what was written (`"model"`, `"saved_model"`, `"report"`, PNGs).
        skipped: files the loader skipped, with the reason.

    Example:
        >>> result = train("digits", per_class=10, minutes=2)  # doctest: +SKIP
        >>> print(result.report.explain())                     # doctest: +SKIP
    """

    decisions: list[Decision]
    candidates: list[Candidate]
    validation: dict[str, float]
    history: dict[str, list[float]]
    diagnosis: Any
    test: dict[str, float] | None
    confusion: np.ndarray | None
    class_names: list[str]
    seconds: float
    steps: int
    refit: bool
    files: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def explain(self) -> str:
        """The decisions, one line each, with the reason."""
        return "\n".join(f"- {d.topic}: {d.choice} — {d.why}" for d in self.decisions)

    def to_dict(self) -> dict:
        return {
            "decisions": [vars(d) for d in self.decisions],
            "candidates": [{k: v for k, v in vars(c).items() if k != "build"}
                           for c in self.candidates],
            "validation": self.validation, "test": self.test, "seconds": self.seconds,
            "steps": self.steps, "refit": self.refit, "files": self.files,
            "skipped": self.skipped,
            "regime": None if self.diagnosis is None else self.diagnosis.regime,
        }


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the final trained classifier (logits; input uint8-valued float images).
        report: the `TrainReport`.

    Example:
        >>> result = train("digits", per_class=10, minutes=2)  # doctest: +SKIP
        >>> result.model.predict(images).argmax(-1)            # doctest: +SKIP
    """

    model: keras.Model
    report: TrainReport


class _Deadline(keras.callbacks.Callback):
    """Stops `fit` at the budget's end (the run keeps the weights it reached)."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline
        self.hit = False

    def on_train_batch_end(self, batch, logs=None):
        if time.time() > self.deadline:
            self.hit = True
            self.model.stop_training = True


class _Progress(keras.callbacks.Callback):
    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)


def _chain(*layers):
    """One batch augmentation applying keras_aug `layers` in order to `(images, labels)`."""
    layers = [layer for layer in layers if layer is not None]
    if not layers:
        return None

    def augment(batch):
        for layer in layers:
            batch = layer(batch)
        return batch

    augment.takes_labels = True
    augment.layers = layers
    return augment


def _fill(images: np.ndarray) -> dict:
    """Constant fill with the border's colour when the border is uniform (digits on black,
    products on white), else reflection (photos), so warps do not paint a wrong background."""
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]],
                            axis=1).astype(np.float32)
    if float(border.std()) < 12.0:
        return {"fill_mode": "constant", "fill_value": float(np.median(border))}
    return {"fill_mode": "reflect"}


def augmentation_candidates(data: RecipeData, fill: dict) -> list[Candidate]:
    """The measured default first, then the variants worth validating for this data."""
    from keras_aug import layers as L

    def affine(seed):
        return L.RandomAffine(rotation=0.08, translate_x=0.1, translate_y=0.1, zoom_y=0.15,
                              seed=seed, **fill)

    mild = Candidate(
        "mild affine (rotation 0.08, translation 0.1, zoom 0.15)",
        lambda seed: _chain(affine(seed)),
        "the best default measured at 10-100 images/class: mild geometry beat strong policies "
        "(RandAugment M9 0.933 vs geometric-only M3 0.923-0.936 at 800 steps; docs/train.md)")
    candidates = [mild]
    if data.image_shape[-1] == 3:
        candidates.append(Candidate(
            "mild affine + horizontal flip",
            lambda seed: _chain(L.RandomFlip("horizontal", seed=seed + 7), affine(seed)),
            "photos are often mirror-symmetric; digits and text are not, so it is validated"))
    candidates.append(Candidate(
        "mild affine + MixUp (alpha 0.2)",
        lambda seed: _chain(affine(seed), L.MixUp(alpha=0.2, num_classes=data.num_classes,
                                                  seed=seed + 11)),
        "mixing helped on some small sets and not others (docs/mixing.md), so it is validated",
        soft_labels=True))
    candidates.insert(len(candidates) - 1, Candidate(
        f"affine up to twice as strong, strength adapted each epoch (from {ADAPTIVE_START})",
        lambda seed: _chain(L.RandomAffine(rotation=0.16, translate_x=0.2, translate_y=0.2,
                                           zoom_y=0.3, seed=seed, strength=ADAPTIVE_START,
                                           **fill)),
        "AdaptiveAugmentation raises the strength while the held-out loss says the model "
        "overfits and lowers it when it underfits (docs/diagnose.md); the refit replays the "
        "strengths it chose", adaptive=True))
    return candidates


def _searched_candidate(images, labels, num_classes, minutes, seed) -> Candidate:
    from keras_aug import layers as L
    from keras_aug.search import SearchTask, search_policy

    result = search_policy(SearchTask(images, labels, num_classes), "fast_aa", minutes=minutes,
                           seed=seed, progress=False)
    policy = result.policy
    return Candidate(f"searched policy (fast_aa, {minutes:.1f} min)",
                     lambda s: _chain(L.AutoAugment(policy, seed=s)),
                     "Fast AutoAugment's density matching on the fit split only")


def _dataset(images, labels, k, augment, seed, repeat: bool):
    from keras_aug.data import make_pipeline

    ds = tf.data.Dataset.from_tensor_slices((images, labels)).map(
        lambda x, y: (x, tf.one_hot(y, k)))
    if not repeat:
        return ds.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    return make_pipeline(ds, augment=augment, batch_size=BATCH_SIZE, repeat=True, seed=seed,
                         reproducible=True)


class _CosineRate(keras.callbacks.Callback):
    """Cosine decay of the learning rate from `LEARNING_RATE` to 0 over `steps`, set before every
    batch (what `keras.optimizers.schedules.CosineDecay` computes; a schedule is traced into
    the compiled train step, so each run length would need its own compile)."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.step = max(1, steps), 0

    def on_train_batch_begin(self, batch, logs=None):
        done = min(self.step / self.steps, 1.0)
        rate = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * done))
        self.model.optimizer.learning_rate.assign(rate)
        self.step += 1


class _Strengths(keras.callbacks.Callback):
    """Sets `layer.strength` to `strengths[epoch]` at each epoch's start (a refit replaying
    what `AdaptiveAugmentation` chose on the validated run)."""

    def __init__(self, layer, strengths):
        super().__init__()
        self.layer, self.strengths = layer, list(strengths)

    def on_epoch_begin(self, epoch, logs=None):
        self.layer.strength = self.strengths[min(epoch, len(self.strengths) - 1)]


def _strength_callbacks(candidate, augment, val, k) -> list:
    """What drives an adaptive candidate's strength: the controller when there are held-out
    images to read, else the replay of its validated run."""
    if not candidate.adaptive:
        return []
    from keras_aug.diagnose import AdaptiveAugmentation

    layer = augment.layers[0]
    if val is not None:
        return [AdaptiveAugmentation(layer, initial=ADAPTIVE_START, chance=1.0 / k)]
    if not candidate.strengths:
        raise RuntimeError(f"{candidate.name!r}: a refit needs the strengths of its validated run")
    return [_Strengths(layer, candidate.strengths)]


class ScratchTrainer:
    """Trains `recipe_cnn` from scratch: one-hot labels (smoothed), cosine learning rate.

    One model is built and compiled per seed and reset (seeded initial weights, fresh Adam)
    before every run: the calibration, every candidate and the refit share one XLA-compiled
    train step instead of compiling their own (5-15 s each on 2 cores)."""

    soft_labels = True
    name = "a BatchNorm CNN from scratch (recipe_cnn)"

    def __init__(self, shape, k):
        self.shape, self.k = shape, k
        self._model, self._seed, self._initial = None, None, None

    def steps(self, n_images: int) -> int:
        return int(np.clip(STEPS_PER_IMAGE * n_images, MIN_STEPS, MAX_STEPS)) // EVALS * EVALS

    def describe(self, steps: int) -> str:
        return (f"{steps} steps of {BATCH_SIZE} images, Adam {LEARNING_RATE} with cosine decay, "
                f"label smoothing {LABEL_SMOOTHING}")

    def build(self, seed: int, steps: int) -> keras.Model:
        """The compiled model at its seeded initial state, Adam's state zeroed (`steps` is set
        by `fit`'s learning-rate callback)."""
        if self._model is None or self._seed != seed:
            model = recipe_cnn(self.shape, self.k, seed)
            model.compile(keras.optimizers.Adam(LEARNING_RATE),
                          loss=keras.losses.CategoricalCrossentropy(
                              from_logits=True, label_smoothing=LABEL_SMOOTHING),
                          metrics=["accuracy"], jit_compile=True)
            model.optimizer.build(model.trainable_variables)
            self._model, self._seed = model, seed
            self._initial = [v.numpy() for v in model.variables]
        else:
            restore(self._model, self._initial)
            for v in self._model.optimizer.variables:
                v.assign(tf.zeros_like(v))
        return self._model

    def accepts(self, candidate) -> bool:
        return True

    def fit(self, candidate, images, labels, val, steps, seed, callbacks):
        model = self.build(seed, steps)
        augment = candidate.build(seed)
        callbacks = [_CosineRate(steps), *_strength_callbacks(candidate, augment, val, self.k),
                     *callbacks]
        history = model.fit(_dataset(images, labels, self.k, augment, seed, True),
                            epochs=EVALS, steps_per_epoch=max(1, steps // EVALS),
                            validation_data=val, callbacks=callbacks, verbose=0)
        return model, history.history


def snapshot(model: keras.Model) -> list[np.ndarray]:
    """Every variable of `model` (weights, BatchNorm statistics, seed states)."""
    return [v.numpy() for v in model.variables]


def restore(model: keras.Model, values: list[np.ndarray]) -> None:
    """Assign a `snapshot` back to `model`'s variables (no new model, no new compile)."""
    for variable, value in zip(model.variables, values):
        variable.assign(value)


class BackboneTrainer:
    """Fine-tunes a pretrained backbone in `finetune`'s phases (`finetune.plan` decides what
    trains); augmentation runs in tf.data on integer labels (so no mixing)."""

    soft_labels = False

    def __init__(self, shape, k, plan_for):
        self.shape, self.k, self.plan_for = shape, k, plan_for
        self.name = f"{plan_for(100).backbone} fine-tuned in finetune's phases"

    def steps(self, n_images: int) -> int:
        epochs = sum(phase.epochs for phase in self.plan_for(n_images).phases)
        return epochs * -(-n_images // BATCH_SIZE)

    def describe(self, steps: int) -> str:
        return f"{steps} steps of {BATCH_SIZE} images in finetune's phases (see the plan)"

    def accepts(self, candidate) -> bool:
        """Not mixing (integer labels) nor adaptive strength (validated for the CNN only)."""
        return not (candidate.soft_labels or candidate.adaptive)

    def build(self, seed: int, steps: int) -> keras.Model:
        from finetune.plan import compile_for_phase

        model = self.plan_for(100).build_model(self.shape)
        compile_for_phase(model, model.finetune_plan.phases[0])
        return model

    def fit(self, candidate, images, labels, val, steps, seed, callbacks):
        from finetune import fine_tune
        from keras_aug.data import make_pipeline

        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        train_ds = make_pipeline(ds, augment=candidate.build(seed), batch_size=BATCH_SIZE,
                                 seed=seed, reproducible=True)
        if val is not None:
            val = val.map(lambda x, y: (x, tf.argmax(y, axis=-1)))
        result = fine_tune(self.plan_for(len(images)), train_ds, val, seed=seed, verbose=0,
                           callbacks=callbacks)
        return result.model, {k: v for k, v in result.history.items() if k != "phase"}


def _run(trainer, candidate, images, labels, val, steps, seed, deadline, bar, diagnosis=None):
    stop = _Deadline(deadline)
    callbacks = [stop] + ([_Progress(bar)] if bar is not None else [])
    if diagnosis is not None:
        callbacks.append(diagnosis)
    model, history = trainer.fit(candidate, images, labels, val, steps, seed, callbacks)
    return model, history, stop.hit


def _calibrate(trainer, images, labels, k, seed) -> tuple[float, float]:
    """Seconds per training step (as `fit` runs them) and per-run overhead on this machine."""
    model = trainer.build(seed, 100)
    if trainer.soft_labels:  # the runs' input spec: the same trace serves them
        ds = _dataset(images, labels, k, None, seed, True)
    else:
        ds = tf.data.Dataset.from_tensors((np.zeros((BATCH_SIZE, *images.shape[1:]), np.float32),
                                           np.arange(BATCH_SIZE) % k)).repeat()
    t0 = time.time()
    model.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    first = time.time() - t0
    t0 = time.time()
    model.fit(ds, epochs=1, steps_per_epoch=20, verbose=0)
    per_step = (time.time() - t0) / 20
    return per_step, max(0.0, first - 2 * per_step) + 2.0  # + dataset and evaluation set-up


def train(
    data: str | RecipeData = "digits",
    *,
    per_class: int | None = None,
    minutes: float = 10.0,
    backbone: str | keras.Model = "auto",
    weights: str | None = "imagenet",
    seed: int = 0,
    out: str | None = None,
    validation_fraction: float = 0.2,
    search: str = "auto",
    steps: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the best classifier this toolkit can for `data` within `minutes`, and say why.

    Args:
        data: `"digits"`, `"folder:PATH"`, `"tfds:NAME"` or a `RecipeData`.
        per_class: use this many training images per class (picked with `seed`).
        minutes: the wall-clock budget for everything (choices, training, export).
        backbone: `"auto"` (decide), `"none"` (the CNN from scratch), a backbone registry name
            (`finetune.list_backbones()`) or your own functional `keras.Model` without its top
            (it scales its own 0..255 input; see `finetune.plan`).
        weights: a registry backbone's weights (`"imagenet"` or a local file).
        seed: every random choice (split, initialisation, augmentation) follows it.
        out: write `model.keras`, `saved_model/`, `report.md` and the PNGs here.
        validation_fraction: share of every class held out to validate the choices.
        search: `"auto"` (search a policy when the budget allows), `"always"` or `"never"`.
        steps: optimizer steps per run (CNN from scratch only); default from the data size.
        progress: show a progress bar with the time left.

    Returns:
        a `TrainResult` with the final `model` and the `report` (`report.explain()`).

    Example:
        >>> result = train("digits", per_class=10, minutes=3, out="runs/digits")  # doctest: +SKIP
        >>> print(result.report.explain())                                          # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from keras_aug.diagnose import FitDiagnosis

    start = time.time()
    check_number("minutes", minutes, 0.0, low_open=True)
    check_integer("seed", seed, 0)
    if search not in ("auto", "always", "never"):
        raise ValueError(f"search must be 'auto', 'always' or 'never', got {search!r}")
    deadline = start + 60.0 * minutes
    if not isinstance(data, RecipeData):
        if not isinstance(data, str):
            raise TypeError(f"data must be a dataset spec string or a RecipeData, got "
                            f"{type(data).__name__}")
        data = RecipeData.load(data, per_class=per_class, seed=seed)
    elif per_class is not None:
        raise ValueError("per_class applies when data is a spec string; subset the RecipeData "
                         "yourself")
    k, shape = data.num_classes, data.image_shape
    counts = data.counts()
    decisions = [Decision(
        "data", f"{len(data.labels)} images, {k} classes ({counts.min()}-{counts.max()} per "
        f"class), {shape[0]}x{shape[1]}x{shape[2]}",
        f"from {data.source}" + (f"; {len(data.skipped)} unreadable file(s) skipped"
                                 if data.skipped else ""))]
    fit_idx, val_idx = holdout(data.labels, validation_fraction, seed)
    decisions.append(Decision(
        "validation", f"{len(val_idx)} images held out ({validation_fraction:.0%} of every "
        "class)", "every choice below is judged on them; the test split is read once, at the end"))
    trainer, why = choose_trainer(shape, k, backbone, weights)
    decisions.append(Decision("model", trainer.name, why))
    if trainer.soft_labels:
        decisions.append(Decision(
            "label smoothing", str(LABEL_SMOOTHING),
            "with ~10 images/class it added 2.5 points on digits (docs/experiments/gan.md)"))

    per_step, overhead = _calibrate(trainer, data.images[fit_idx], data.labels[fit_idx], k, seed)
    steps_given = steps is not None
    if steps is None:
        steps = trainer.steps(len(fit_idx))
    elif not trainer.soft_labels:
        raise ValueError("steps applies to the CNN from scratch; a backbone trains in "
                         "finetune's phases (see finetune.plan)")
    else:
        check_integer("steps", steps, EVALS)
        steps = steps // EVALS * EVALS

    def estimate(n_steps):  # before any run, from the calibration
        return overhead + n_steps * per_step * 1.15  # + evaluation and input pipeline

    reserve = 15.0 if out else 3.0  # the test evaluation and the export

    def left():
        return deadline - time.time() - reserve

    fill = _fill(data.images)
    candidates = [c for c in augmentation_candidates(data, fill) if trainer.accepts(c)]
    # The refit sees every image: as many steps per image as the validated run had.
    refit_steps = steps if steps_given else trainer.steps(len(data.labels))
    if estimate(steps) > left():
        if not trainer.soft_labels:
            raise ValueError(f"minutes={minutes} is too small to fine-tune {trainer.name} once "
                             f"(~{estimate(steps) / 60:.1f} min here); give more minutes or "
                             "--backbone none")
        steps = int((left() - overhead) / (per_step * 1.15)) // EVALS * EVALS
        if steps < 10 * EVALS:
            raise ValueError(f"minutes={minutes} is too small to train one model on this data "
                             f"(~{estimate(10 * EVALS) / 60:.1f} min at {per_step * 1e3:.0f} "
                             "ms/step for the shortest useful run); give more minutes")

    x_fit, y_fit = data.images[fit_idx], data.labels[fit_idx]
    val = _dataset(data.images[val_idx], data.labels[val_idx], k, None, seed, False)
    bar = tqdm(total=steps + refit_steps, desc="kaug train", unit="step", disable=not progress)
    runs = {}

    def validate(candidate):
        t0 = time.time()
        diagnosis = FitDiagnosis(verbose=0, chance=1.0 / k)
        bar.set_postfix_str(candidate.name[:40])
        model, history, hit = _run(trainer, candidate, x_fit, y_fit, val, steps, seed, deadline,
                                   bar, diagnosis)
        evaluated = model.evaluate(val if trainer.soft_labels else
                                   val.map(lambda x, y: (x, tf.argmax(y, axis=-1))), verbose=0)
        candidate.loss, candidate.accuracy = float(evaluated[0]), float(evaluated[1])
        if candidate.adaptive:
            candidate.strengths = [round(float(v), 4) for v in history["augmentation_strength"]]
        candidate.seconds = time.time() - t0
        runs[candidate.name] = (model, snapshot(model), history, diagnosis.diagnosis)
        return hit

    try:
        tried = [candidates[0]]
        hit = validate(candidates[0])
        seconds_per_step = candidates[0].seconds / steps  # measured: everything included

        def cost(n_steps):
            return n_steps * seconds_per_step

        decisions.append(Decision(
            "steps", trainer.describe(steps),
            ("asked for; " if steps_given else
             f"{STEPS_PER_IMAGE} steps per training image within [{MIN_STEPS}, {MAX_STEPS}] "
             "(long training with augmentation beat short on every seed, docs/diagnose.md); "
             if trainer.soft_labels else "") +
            f"the first run took {candidates[0].seconds:.0f} s here, which sets how many "
            "candidates and whether a refit fit in the budget"))
        # The refit is planned first: it is worth more than one more candidate.
        refit = not hit and cost(refit_steps) <= left()
        for candidate in candidates[1:]:
            if hit or left() - (cost(refit_steps) if refit else 0.0) < cost(steps):
                break
            bar.total += steps
            tried.append(candidate)
            hit = validate(candidate)
        dropped = [c for c in candidates if c not in tried]
        if search == "always" or (search == "auto" and left() > 20 * 60
                                  and len(fit_idx) >= 5 * k):
            search_minutes = min(10.0, 0.4 * left() / 60)
            searched = _searched_candidate(x_fit, y_fit, k, search_minutes, seed)
            bar.total += steps
            validate(searched)
            tried.append(searched)
        best = tried[0]
        for candidate in tried[1:]:
            if candidate.accuracy is not None and candidate.accuracy > best.accuracy:
                best = candidate
        decisions.append(Decision("augmentation", best.name, _augmentation_reason(
            best, tried, dropped, len(val_idx))))
        model, state, history, diagnosis = runs[best.name]
        restore(model, state)  # the CNN from scratch reuses one model for every run
        validation = {"accuracy": best.accuracy, "loss": best.loss}
        if refit and cost(refit_steps) <= left():
            bar.set_postfix_str("final model on every image")
            model, _, hit = _run(trainer, best, data.images, data.labels, None, refit_steps,
                                 seed, deadline, bar)
            decisions.append(Decision(
                "final model", f"retrained on all {len(data.labels)} images"
                + (f" ({refit_steps} steps)" if trainer.soft_labels else ""),
                "the held-out images chose the setup; the final model learns from them too"
                + (" (stopped early by the budget)" if hit else "")))
        else:
            refit = False
            bar.total -= refit_steps
            decisions.append(Decision(
                "final model", f"the validated run ({len(fit_idx)} images)",
                f"retraining on every image (~{cost(refit_steps):.0f} s) does not fit the "
                "budget left"))
    finally:
        bar.close()
    if diagnosis is not None:
        decisions.append(Decision("regime", diagnosis.regime, diagnosis.reason))

    test = confusion = None
    if data.test_images is not None:
        test_ds = _dataset(data.test_images, data.test_labels, k, None, seed, False)
        predicted = np.argmax(model.predict(test_ds, verbose=0), axis=-1)
        test = {"accuracy": float(np.mean(predicted == data.test_labels))}
        confusion = np.zeros((k, k), np.int64)
        np.add.at(confusion, (data.test_labels, predicted), 1)
    report = TrainReport(decisions, tried + dropped, validation, history, diagnosis, test,
                         confusion, data.class_names, time.time() - start, steps, refit,
                         skipped=list(data.skipped))
    if out is not None:
        from keras_aug.recipe.report import write_outputs

        write_outputs(out, model, report, data, best.build(seed))
    report.seconds = time.time() - start
    return TrainResult(model, report)


AUTO_BACKBONE = "MobileNetV2"
BACKBONE_SIZES = (96, 128, 160)  # MobileNetV2's ImageNet resolutions a CPU affords


def choose_trainer(shape, k, backbone: str, weights):
    """`(trainer, why)`: a pretrained backbone when one is asked for or `"auto"` finds one
    whose weights load, else the CNN from scratch."""
    from finetune import plan

    if (isinstance(backbone, keras.Model) or backbone == "none") and weights not in (None,
                                                                                    "imagenet"):
        raise ValueError(f"weights={weights!r} applies to a registry backbone; with backbone="
                         f"{'none' if backbone == 'none' else 'a keras.Model'} it would be "
                         "ignored (load them into your model, or name the backbone)")
    if isinstance(backbone, keras.Model):
        model = backbone

        def plan_for(n_images):
            return plan(model, dataset_size=n_images, num_classes=k)

        plan_for(k * 10)  # a model that cannot be split into blocks raises here
        return BackboneTrainer(shape, k, plan_for), (
            f"your model {model.name!r}, split into blocks by its structure; finetune.plan "
            "decides which blocks train from the dataset size")
    if backbone == "none":
        return ScratchTrainer(shape, k), "asked for (--backbone none)"
    if not isinstance(backbone, str):
        raise TypeError(f"backbone must be 'auto', 'none', a registry name or a keras.Model, "
                        f"got {backbone!r}")
    if backbone == "auto":
        if min(shape[:2]) < min(BACKBONE_SIZES):
            return ScratchTrainer(shape, k), (
                f"{shape[0]}x{shape[1]} images are below the {min(BACKBONE_SIZES)}-224 px "
                "ImageNet backbones are trained at; a small CNN from scratch fits them")
        name = AUTO_BACKBONE
    else:
        name = backbone
    from finetune.registry import get_spec

    spec = get_spec(name)
    size = int(np.clip(min(shape[:2]), spec.min_size, spec.default_size))
    if backbone == "auto":
        size = max([s for s in BACKBONE_SIZES if s <= size] or [min(BACKBONE_SIZES)])

    def plan_for(n_images):
        return plan(name, dataset_size=n_images, num_classes=k, weights=weights,
                    input_shape=(size, size, 3))

    try:
        plan_for(k * 10)
    except ValueError as err:
        if backbone != "auto":
            raise
        return ScratchTrainer(shape, k), (
            f"{name} could not be loaded with weights={weights!r} ({err}); a CNN from scratch "
            "instead (pass --weights PATH to a local weights file to use the backbone)")
    return BackboneTrainer(shape, k, plan_for), (
        f"{'auto: ' if backbone == 'auto' else ''}{shape[0]}x{shape[1]} images, pretrained "
        f"weights available: transfer beats training from scratch on small data; resized to "
        f"{size}x{size}; finetune.plan decides which blocks train from the dataset size")


def _augmentation_reason(best, tried, dropped, n_val) -> str:
    scores = "; ".join(f"{c.name}: {c.accuracy:.3f}" for c in tried if c.accuracy is not None)
    reason = (f"{best.why}. Held-out accuracy ({n_val} images) {scores}; another candidate "
              "replaces the default only when strictly better")
    if dropped:
        reason += "; not tried within the budget: " + ", ".join(c.name for c in dropped)
    return reason
