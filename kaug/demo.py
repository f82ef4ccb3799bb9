"""`kaug demo`: the low-data story on the embedded digits, one table row per technique.

A small CNN learns from 10 images per class (100 images) and is tested on the 797 held-out
digits, 3 seeds per row. Rows come from the entry points of the group `kaug.demo_rows`: each
names a function returning a list of `DemoRow` (kaug's own are in `kaug.rows`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy
from keras_aug.data import few_shot, load_dataset, make_pipeline
from keras_aug.search.child import ChildConfig, compile_child, small_cnn
from kaug.plugins import DEMO_ROWS, plugin_error, plugins


@dataclass
class DemoConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    per_class: int = 10
    steps: int = 800  # optimizer steps (200 epochs of 100 images at batch 25)
    batch_size: int = 25
    evals: int = 10  # validation points on the learning curve
    quick: bool = False
    all_rows: bool = False  # every registered row (~20 min on 2 cores) instead of the core ones
    out_dir: str = os.path.join("runs", "demo")

    @classmethod
    def quick_config(cls, out_dir: str | None = None) -> "DemoConfig":
        return cls(seeds=(0,), steps=120, evals=4, quick=True,
                   out_dir=out_dir or os.path.join("runs", "demo"))


@dataclass
class DemoData:
    train: tf.data.Dataset  # the few-shot subset for this seed, unbatched (image uint8, label)
    test: tf.data.Dataset  # batched float32 test split
    num_classes: int
    image_shape: tuple[int, int, int]


@dataclass
class DemoRow:
    """A table row: `augment(seed)` -> a batch augmentation for `make_pipeline` (or None), or a
    whole custom `run(data, seed, config)` -> (test accuracy, History.history)."""

    name: str
    augment: Callable[[int], Callable | None] | None = None
    run: Callable[[DemoData, int, DemoConfig], tuple[float, dict]] | None = None
    in_quick: bool = False  # `kaug demo --quick` runs only the rows that set this
    core: bool = False  # plain `kaug demo` runs the core rows; `--full` runs every row
    notes: str = ""
    extra: dict = field(default_factory=dict)


def train_classifier(
    data: DemoData,
    seed: int,
    config: DemoConfig,
    augment: Callable | None = None,
    train_ds: tf.data.Dataset | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[float, dict, keras.Model]:
    """Train `small_cnn` on `train_ds` (default the few-shot set) with `augment` in tf.data;
    `callbacks` go to `fit` (e.g. `AdaptiveAugmentation` driving `augment`)."""
    # Soft labels (mixing layers) and integer labels both work with this loss pairing.
    model = compile_child(small_cnn(data.image_shape, data.num_classes, seed), ChildConfig())
    pipeline = make_pipeline(
        train_ds if train_ds is not None else data.train,
        augment=augment,
        batch_size=config.batch_size,
        repeat=True,
        seed=seed,
    )
    steps_per_eval = max(1, config.steps // config.evals)
    history = model.fit(
        pipeline,
        epochs=config.evals,
        steps_per_epoch=steps_per_eval,
        validation_data=data.test,
        callbacks=list(callbacks),
        verbose=0,
    )
    _, accuracy = model.evaluate(data.test, verbose=0)
    return float(accuracy), history.history, model


def demo_rows() -> list[DemoRow]:
    """Every registered row, in entry-point name order; a plugin that fails raises PluginError."""
    rows = []
    for ep, make_rows in plugins(DEMO_ROWS):
        try:
            made = list(make_rows())
        except Exception as err:
            raise plugin_error(ep, f"failed to make its rows: {type(err).__name__}: {err}") from err
        wrong = [r for r in made if not isinstance(r, DemoRow)]
        if wrong:
            raise plugin_error(ep, f"returned a {type(wrong[0]).__name__}, expected DemoRow")
        rows.extend(made)
    return rows


def run_demo(config: DemoConfig | None = None, rows: list[DemoRow] | None = None) -> dict:
    """Run every row for every seed; print the table; write the PNGs and the SavedModel."""
    from tqdm.auto import tqdm

    from keras_aug import viz

    config = config or DemoConfig()
    rows = rows if rows is not None else demo_rows()
    if config.quick:
        rows = [r for r in rows if r.in_quick]
    elif not config.all_rows:
        rows = [r for r in rows if r.core]
    os.makedirs(config.out_dir, exist_ok=True)
    dataset = load_dataset("digits")
    test = dataset.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    results: dict[str, list[float]] = {r.name: [] for r in rows}
    curves: dict[str, dict] = {}
    start = time.time()
    bar = tqdm(total=len(rows) * len(config.seeds), desc="kaug demo", unit="run")
    for seed in config.seeds:
        data = DemoData(few_shot(dataset.train, config.per_class, seed=seed), test,
                        dataset.num_classes, dataset.image_shape)
        for row in rows:
            t0 = time.time()
            if row.run is not None:
                accuracy, history = row.run(data, seed, config)
            else:
                augment = row.augment(seed) if row.augment else None
                accuracy, history, _ = train_classifier(data, seed, config, augment)
            results[row.name].append(accuracy)
            if seed == config.seeds[0]:
                curves[row.name] = history
            bar.set_postfix_str(f"{row.name}: {accuracy:.3f} ({time.time() - t0:.0f}s)")
            bar.update()
    bar.close()
    table = format_table(results, config)
    print(table)
    with open(os.path.join(config.out_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    viz.save_learning_curves(
        curves, os.path.join(config.out_dir, "learning_curves.png"), metrics=("val_accuracy",),
        title=f"test accuracy while training, {config.per_class} images/class (seed {config.seeds[0]})",
    )
    _write_preview_and_export(dataset, config)
    print(f"Wrote {config.out_dir}/: results.md, learning_curves.png, preview.png, saved_model/ "
          f"({time.time() - start:.0f}s)")
    return results


def format_table(results: dict[str, list[float]], config: DemoConfig) -> str:
    n = len(config.seeds)
    lines = [
        f"digits, {config.per_class} images/class, test on 797 images, {n} seed(s), "
        f"{config.steps} steps",
        "",
        "| pipeline | test accuracy (mean ± std) | per seed |",
        "|---|---|---|",
    ]
    for name, accs in results.items():
        per_seed = " ".join(f"{a:.3f}" for a in accs)
        accs = np.asarray(accs)
        lines.append(f"| {name} | {accs.mean():.3f} ± {accs.std():.3f} | {per_seed} |")
    return "\n".join(lines)


def _write_preview_and_export(dataset, config: DemoConfig) -> None:
    """Preview the keras_aug pipeline; export a model that contains it; check serve == predict."""
    from keras_aug import viz
    from kaug.rows.augmentation import export_augmentation

    images = np.stack([x for x, _ in dataset.test.take(16).as_numpy_iterator()]).astype("float32")
    augmentation = export_augmentation(seed=0)
    augmented = augmentation(images)
    viz.save_image_grid(
        np.concatenate([images[:8], np.asarray(augmented)[:8]]),
        os.path.join(config.out_dir, "preview.png"),
        titles=["original"] * 8 + ["augmented"] * 8,
        suptitle=f"keras_aug pipeline: {augmentation.name}",
    )
    classifier = small_cnn(dataset.image_shape, dataset.num_classes, seed=0)
    model = keras.Sequential([keras.Input(dataset.image_shape), augmentation, classifier])
    model.compile("adam", loss=LabelCrossentropy(), metrics=[LabelAccuracy()])
    x = images[:8]
    y = np.asarray([label for _, label in dataset.test.take(8).as_numpy_iterator()])
    model.fit(x, y, epochs=1, verbose=0)  # augmentation active here ...
    path = os.path.join(config.out_dir, "saved_model")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    served = reloaded.serve(tf.constant(x))
    predicted = model.predict(x, verbose=0)
    gap = float(np.max(np.abs(np.asarray(served) - predicted)))
    print(f"SavedModel with the augmentation inside: max |serve - predict| = {gap:.2e} "
          f"({'equal' if gap < 1e-4 else 'DIFFERENT'}) ... and off when serving.")
