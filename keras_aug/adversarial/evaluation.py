"""Robustness evaluation: clean and adversarial accuracy over a dataset, and a picture of clean
versus adversarial examples with the model's predictions."""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from keras_aug.adversarial.attacks import (
    NORMS,
    check_data_range,
    check_eps,
    check_steps,
    fgsm,
    pgd,
)
from keras_aug.adversarial.outputs import resolve_from_logits
from keras_aug.core.labels import class_ids
from keras_aug.core.validation import check_choice, check_value_range

_ATTACK_NAME = re.compile(r"^(fgsm|pgd)(?:-(\d+))?$")


def _parse_attack(name: str, steps: int) -> tuple[str, int]:
    match = _ATTACK_NAME.match(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(
            f"attacks must contain 'fgsm', 'pgd' or 'pgd-K' (K steps, e.g. 'pgd-20'), got {name!r}")
    kind, k = match.group(1), match.group(2)
    if kind == "fgsm":
        if k is not None:
            raise ValueError(f"fgsm has exactly one step; got attack {name!r}")
        return "fgsm", 1
    return "pgd", check_steps(int(k)) if k is not None else steps


def _batches(dataset, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Materialize `(images, labels)` batches from tf.data (batched or not) or an (x, y) pair."""
    if isinstance(dataset, tf.data.Dataset):
        spec = dataset.element_spec
        if not isinstance(spec, (tuple, list)) or len(spec) < 2:
            raise ValueError("dataset must yield (images, labels) pairs, got element_spec "
                             f"{spec!r}")
        if spec[0].shape.rank == 3:
            dataset = dataset.batch(batch_size)
        return [(np.asarray(x, np.float32), np.asarray(y)) for x, y, *_ in dataset]
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        x, y = np.asarray(dataset[0], np.float32), np.asarray(dataset[1])
        if len(x) != len(y):
            raise ValueError(f"dataset images and labels differ in length: {len(x)} vs {len(y)}")
        return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    raise TypeError("dataset must be a tf.data.Dataset of (images, labels) or an (images, labels) "
                    f"pair of arrays, got {type(dataset).__name__}")


def evaluate_robustness(
    model,
    dataset,
    attacks: Sequence[str] = ("fgsm", "pgd-20"),
    eps: Iterable[float] | Mapping[str, Iterable[float]] = (8.0,),
    *,
    steps: int = 20,
    step_size: float | None = None,
    norm: str = "linf",
    value_range=(0, 255),
    from_logits: bool | None = None,
    batch_size: int = 256,
    seed: int = 0,
) -> list[dict]:
    """Clean and adversarial accuracy of `model` on `dataset`, one row per (attack, ε).

    The dataset is read into memory once (small test sets are the target) and every attack runs
    over the same images with a fixed seed, so rows are comparable and reruns identical.

    Args:
        model: a Keras classifier (logits or probabilities; see `from_logits`).
        dataset: tf.data of `(images, labels)` (batched or not) or an `(images, labels)` pair.
        attacks: names among `"fgsm"`, `"pgd"` (`steps` steps) and `"pgd-K"` (K steps).
        eps: budgets in value_range units, for every attack, or a dict attack name -> budgets.
        steps: PGD steps for `"pgd"`.
        step_size: PGD step size (default 2.5·ε/steps).
        norm: `"linf"` or `"l2"`.
        value_range: `(low, high)` of the images.
        from_logits: whether the model outputs logits; None reads a final softmax.
        batch_size: batch size for unbatched datasets and arrays.
        seed: seed of PGD's random start (fixed, so reruns give the same numbers).

    Returns:
        Rows `{"attack", "norm", "eps", "accuracy", "n"}`, the first one `attack="clean"`.

    Example:
        >>> import keras
        >>> from keras_aug.data import load_dataset
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])            # logits
        >>> test = load_dataset("digits").test.take(64)
        >>> rows = evaluate_robustness(model, test, ["fgsm", "pgd-20"], eps=[12.75, 25.5],
        ...                            from_logits=True)
        >>> [(row["attack"], row["eps"]) for row in rows]
        [('clean', 0.0), ('fgsm', 12.75), ('fgsm', 25.5), ('pgd-20', 12.75), ('pgd-20', 25.5)]
        >>> table = format_robustness_table(rows)
    """
    from_logits = resolve_from_logits(model, from_logits)
    value_range = check_value_range(value_range)
    check_choice("norm", norm, NORMS)
    steps = check_steps(steps)
    if isinstance(attacks, str):
        attacks = [attacks]
    parsed = [(name, *_parse_attack(name, steps)) for name in attacks]
    if isinstance(eps, Mapping):
        unknown = set(eps) - {name for name, *_ in parsed}
        if unknown:
            raise ValueError(f"eps names attacks not in attacks={list(attacks)}: {sorted(unknown)}")
        budgets = {name: [check_eps(e, value_range, norm=norm) for e in eps.get(name, ())]
                   for name, *_ in parsed}
    else:
        if isinstance(eps, (int, float)):
            eps = [eps]
        values = [check_eps(e, value_range, norm=norm) for e in eps]
        budgets = {name: values for name, *_ in parsed}
    batches = _batches(dataset, batch_size)
    if not batches:
        raise ValueError("dataset is empty")
    check_data_range(batches[0][0], value_range, name="dataset images")

    # One trace per attack for every batch size (input_signature), and plain graphs, not XLA:
    # measured 6x slower for PGD on 2 CPU cores (XLA's input gradients of convolutions).
    x0, y0 = batches[0]
    signature = [tf.TensorSpec((None, *x0.shape[1:]), tf.float32),
                 tf.TensorSpec((None, *y0.shape[1:]), tf.as_dtype(y0.dtype))]

    def compiled(fn):
        return tf.function(fn, input_signature=signature, autograph=False)

    predict = tf.function(lambda x: tf.argmax(model(x, training=False), axis=-1),
                          input_signature=signature[:1], autograph=False)
    n = sum(len(x) for x, _ in batches)

    def accuracy(make_images) -> float:
        correct = 0
        for x, y in batches:
            images = x if make_images is None else make_images(tf.constant(x), tf.constant(y))
            predicted = predict(tf.constant(images)).numpy()
            correct += int((predicted == np.asarray(class_ids(y))).sum())
        return correct / n

    rows = [{"attack": "clean", "norm": "-", "eps": 0.0,
             "accuracy": accuracy(None), "n": n}]
    for name, kind, k in parsed:
        for e in budgets[name]:
            if kind == "fgsm":
                attack = compiled(lambda x, y, e=e: fgsm(
                    model, x, y, e, from_logits=from_logits, value_range=value_range, norm=norm))
            else:
                attack = compiled(lambda x, y, e=e, k=k: pgd(
                    model, x, y, e, steps=k, step_size=step_size, from_logits=from_logits,
                    value_range=value_range, norm=norm, seed=seed))
            label = name if kind == "fgsm" or "-" in name else f"pgd-{k}"
            rows.append({"attack": label, "norm": norm, "eps": e, "accuracy": accuracy(attack),
                         "n": n})
    return rows


def format_robustness_table(rows: Sequence[dict], value_range=(0, 255)) -> str:
    """A markdown table of `evaluate_robustness` rows (ε also shown as a fraction of the range).

    Args:
        rows: dicts with `attack`, `norm`, `eps` and `accuracy`, as `evaluate_robustness` returns.
        value_range: the images' range, for the ε / range column.

    Example:
        >>> rows = [{"attack": "pgd-20", "norm": "linf", "eps": 25.5, "accuracy": 0.613}]
        >>> print(format_robustness_table(rows))
        | attack | norm | ε | ε / range | accuracy |
        |---|---|---|---|---|
        | pgd-20 | linf | 25.5 | 0.100 | 0.613 |
    """
    low, high = check_value_range(value_range)
    lines = ["| attack | norm | ε | ε / range | accuracy |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['attack']} | {row['norm']} | {row['eps']:g} | "
                     f"{row['eps'] / (high - low):.3f} | {row['accuracy']:.3f} |")
    return "\n".join(lines)


def save_adversarial_examples(
    model,
    images,
    labels,
    path: str,
    eps: float,
    *,
    attack: str = "pgd-20",
    norm: str = "linf",
    value_range=(0, 255),
    from_logits: bool | None = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> str:
    """PNG with three rows: clean images, their adversarial versions, and the perturbation
    (mid-grey = 0, scaled to ±ε), each titled with the model's prediction. Returns the path.

    Args:
        model: the classifier attacked.
        images: a batch of images in `value_range`.
        labels: their integer (or one-hot) labels.
        path: where the PNG is written.
        eps: the attack budget, in `value_range` units.
        attack: `"fgsm"` or `"pgd-K"` (K steps).
        norm: `"linf"` or `"l2"`.
        value_range: the images' range.
        from_logits: whether the model outputs logits; `None` detects a final softmax.
        class_names: names shown in the titles (default: the class ids).
        seed: the attack's random start.

    Example:
        >>> import os, tempfile
        >>> model = keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])
        >>> images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 1)).astype("float32")
        >>> out = os.path.join(tempfile.mkdtemp(), "adversarial.png")
        >>> path = save_adversarial_examples(model, images, np.arange(4), out, eps=8.0,
        ...                                  attack="fgsm", from_logits=True)
        >>> os.path.exists(path)
        True
    """
    from keras_aug.viz import save_image_grid

    from_logits = resolve_from_logits(model, from_logits)
    low, high = check_value_range(value_range)
    check_choice("norm", norm, NORMS)
    eps = check_eps(eps, value_range, norm=norm)
    kind, k = _parse_attack(attack, 20)
    x = tf.constant(np.asarray(images, np.float32))
    y = np.asarray(labels)
    check_data_range(x, value_range)
    if kind == "fgsm":
        x_adv = fgsm(model, x, y, eps, from_logits=from_logits, value_range=value_range, norm=norm)
    else:
        x_adv = pgd(model, x, y, eps, steps=k, from_logits=from_logits, value_range=value_range,
                    norm=norm, seed=seed)
    names = list(class_names) if class_names else None

    def name(i):
        return names[i] if names else str(i)

    clean_pred = np.argmax(model(x, training=False), -1)
    adv_pred = np.argmax(model(x_adv, training=False), -1)
    truth = np.asarray(class_ids(y))
    delta = (np.asarray(x_adv) - np.asarray(x)) / (2 * max(eps, 1e-12)) + 0.5
    n = len(truth)
    titles = ([f"clean: {name(p)} (true {name(t)})" for p, t in zip(clean_pred, truth)]
              + [f"adv: {name(p)}" + (" ✗" if p != t else "") for p, t in zip(adv_pred, truth)]
              + ["perturbation"] * n)
    grid = np.concatenate([np.asarray(x), np.asarray(x_adv), low + delta * (high - low)])
    return save_image_grid(grid, path, titles=titles, ncols=n, value_range=value_range,
                           suptitle=f"{attack} ({norm}), ε = {eps:g} ({eps / (high - low):.3f} of range)")


__all__ = ["evaluate_robustness", "format_robustness_table", "save_adversarial_examples"]
