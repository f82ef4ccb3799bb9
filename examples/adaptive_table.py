"""Adaptive augmentation vs RandAugment at fixed magnitudes, and the regime diagnosis, on digits.

Table: for each size (images per class) and seed, the demo's small CNN trains for a fixed number
of steps with RandAugment(num_ops=2) at magnitude low (3), default (9) and high (10, 3 ops),
and with `AdaptiveAugmentation` driving RandAugment(2, 10) from strength 0 (the magnitude it uses
is 10 x strength). Per seed the 1797 digits are split, stratified: `size` images/class train, 10
images/class validation (the controller's signal; unused by the fixed rows), the rest test.

Diagnosis (`--diagnosis`): an underfit run (tiny model, few steps) and an overfit run (wider
model, many steps, no augmentation), each diagnosed by `FitDiagnosis`; the overfit run's picture
goes to docs/diagnose_overfit.png.

    python examples/adaptive_table.py                       # the table (~16 min on 2 busy cores)
    python examples/adaptive_table.py --diagnosis --sizes   # only the diagnosis runs
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_aug.data import digits_arrays, few_shot_indices, make_pipeline  # noqa: E402
from kaug.demo import small_cnn  # noqa: E402
from keras_aug.diagnose import AdaptiveAugmentation, FitDiagnosis  # noqa: E402
from keras_aug.layers import RandAugment  # noqa: E402

VAL_PER_CLASS = 10
BATCH = 25
EPOCHS = 20  # validation points per run (the controller updates after each)
FIXED = {"RA low (N2 M3)": (2, 3.0), "RA default (N2 M9)": (2, 9.0),
         "RA high (N3 M10)": (3, 10.0)}


def split(labels: np.ndarray, per_class: int, seed: int):
    """Stratified train / validation / test positions for one seed."""
    train = few_shot_indices(labels, per_class, seed)
    rest = np.setdiff1d(np.arange(len(labels)), train)
    val = rest[few_shot_indices(labels[rest], VAL_PER_CLASS, seed + 1000)]
    test = np.setdiff1d(rest, val)
    return train, val, test


def compile_model(model: keras.Model) -> keras.Model:
    model.compile(keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=True)
    return model


def run(images, labels, idx, seed, steps, augment=None, callbacks=(), model=None):
    """Train for `steps` steps in EPOCHS chunks; return (test accuracy, history)."""
    train_idx, val_idx, test_idx = idx
    model = compile_model(model or small_cnn(images.shape[1:], 10, seed))
    train = make_pipeline(tf.data.Dataset.from_tensor_slices((images[train_idx],
                                                              labels[train_idx])),
                          augment=augment, batch_size=BATCH, repeat=True, seed=seed)
    val = (images[val_idx].astype("float32"), labels[val_idx])
    history = model.fit(train, epochs=EPOCHS, steps_per_epoch=max(1, steps // EPOCHS),
                        validation_data=val, callbacks=list(callbacks), verbose=0)
    _, accuracy = model.evaluate(images[test_idx].astype("float32"), labels[test_idx],
                                 batch_size=512, verbose=0)
    return float(accuracy), history.history


def table(args, images, labels) -> str:
    rows: dict[tuple[int, str], list[float]] = {}
    strengths: dict[int, list[float]] = {}
    for size, steps in zip(args.sizes, args.steps):
        for seed in args.seeds:
            idx = split(labels, size, seed)
            for name, (num_ops, magnitude) in FIXED.items():
                t0 = time.time()
                augment = RandAugment(num_ops, magnitude, seed=seed, jit_compile=False)
                acc, _ = run(images, labels, idx, seed, steps, augment)
                rows.setdefault((size, name), []).append(acc)
                print(f"size {size} seed {seed} {name}: {acc:.3f} ({time.time() - t0:.0f}s)",
                      file=sys.stderr, flush=True)
            t0 = time.time()
            augment = RandAugment(2, 10.0, seed=seed, jit_compile=False)
            controller = AdaptiveAugmentation(augment, initial=0.0, target=args.target)
            acc, history = run(images, labels, idx, seed, steps, augment, [controller])
            rows.setdefault((size, "adaptive (RA N2, M = 10 x strength)"), []).append(acc)
            strengths.setdefault(size, []).append(float(np.mean(controller.strengths[-5:])))
            print(f"size {size} seed {seed} adaptive: {acc:.3f}, strength "
                  f"{[round(s, 2) for s in controller.strengths]} ({time.time() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, f"adaptive_{size}_{seed}.json"), "w") as f:
                json.dump(history, f)
    lines = [f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"`python {' '.join(sys.argv)}`",
             f"digits {args.image_size}x{args.image_size}, small CNN, batch {BATCH}, validation "
             f"{VAL_PER_CLASS}/class, test = the rest; steps {dict(zip(args.sizes, args.steps))}; "
             f"adaptive target {args.target} (loss signal)", "",
             "| images/class | pipeline | " + " | ".join(f"seed {s}" for s in args.seeds)
             + " | mean ± std |", "|---|---|" + "---|" * (len(args.seeds) + 1)]
    for (size, name), accs in rows.items():
        a = np.asarray(accs)
        lines.append(f"| {size} | {name} | " + " | ".join(f"{x:.3f}" for x in a)
                     + f" | {a.mean():.3f} ± {a.std():.3f} |")
    lines.append("")
    for size, s in strengths.items():
        lines.append(f"adaptive strength, mean of the last 5 epochs, {size}/class: "
                     + ", ".join(f"{x:.2f}" for x in s))
    return "\n".join(lines)


def tiny_cnn(shape, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(2, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])


def wide_cnn(shape, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input(shape), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(), keras.layers.Dense(512, activation="relu"),
                             keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])


def diagnosis_runs(args, images, labels) -> str:
    idx = split(labels, 10, 0)
    lines = ["", "| run | regime named | reason |", "|---|---|---|"]
    for name, model, steps, plot in (
        ("underfit: 2-filter CNN, 40 steps", tiny_cnn(images.shape[1:], 0), 40,
         "docs/diagnose_underfit.png"),
        ("overfit: 2x512 MLP, 1600 steps, no augmentation", wide_cnn(images.shape[1:], 0), 1600,
         "docs/diagnose_overfit.png"),
    ):
        callback = FitDiagnosis(plot_path=plot, verbose=0, chance=0.1)
        acc, _ = run(images, labels, idx, 0, steps, model=model, callbacks=[callback])
        d = callback.diagnosis
        lines.append(f"| {name} (test {acc:.3f}) | {d.regime} | {d.reason} |")
        print(d.explain(), file=sys.stderr, flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--steps", type=int, nargs="*", default=[800, 1200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--target", type=float, default=0.2)
    parser.add_argument("--diagnosis", action="store_true", help="also run the diagnosis pair")
    parser.add_argument("--out", default=os.path.join("runs", "adaptive"))
    args = parser.parse_args()
    if args.sizes and len(args.sizes) != len(args.steps):
        parser.error("--steps needs one value per --sizes value")
    images, labels = digits_arrays(args.image_size)
    out = table(args, images, labels) if args.sizes else ""
    if args.diagnosis:
        out += diagnosis_runs(args, images, labels)
    print(out)


if __name__ == "__main__":
    main()
