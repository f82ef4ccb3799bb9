"""Mixing on digits at 98 images/class (the most every class of the training split has): none vs MixUp vs CutMix vs PuzzleMix, 3 seeds.

    python examples/mixing_table.py [--per-class 98] [--steps 1500] [--seeds 0 1 2]
                                    [--preview docs/mixing.png]

Trains the demo CNN (`keras_aug.demo.small_cnn`) on a class-balanced subset of the embedded
digits and tests on the 797 held-out images. Prints a markdown table (mean ± std over seeds) and
writes a preview PNG of mixed batches with their label weights (PuzzleMix uses the saliency of
the model it trained with seed 0).
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_aug.data import few_shot, load_dataset, make_pipeline  # noqa: E402
from keras_aug.demo import _Accuracy, _Loss, small_cnn  # noqa: E402
from keras_aug.layers import CutMix, MixUp, PuzzleMixModel  # noqa: E402

ROWS = {
    "none": None,
    "MixUp (alpha 0.2)": lambda seed: MixUp(alpha=0.2, num_classes=10, seed=seed),
    "CutMix (alpha 1)": lambda seed: CutMix(alpha=1.0, num_classes=10, seed=seed),
    "PuzzleMix (alpha 1, grids 2/4/8)": "puzzlemix",
}


def train(row, train_ds, test, shape, seed, steps, batch):
    model = small_cnn(shape, 10, seed)
    trainer = model
    augment = None
    if row == "puzzlemix":
        trainer = PuzzleMixModel(model, grid_sizes=(2, 4, 8), seed=seed)
    elif row is not None:
        augment = row(seed)
    trainer.compile(keras.optimizers.Adam(1e-3), loss=_Loss(), metrics=[_Accuracy()],
                    jit_compile=True)
    pipeline = make_pipeline(train_ds, augment=augment, batch_size=batch, repeat=True, seed=seed)
    trainer.fit(pipeline, epochs=1, steps_per_epoch=steps, verbose=0)
    return float(trainer.evaluate(test, verbose=0)[1]), trainer


def save_preview(path, test, trainer):
    from keras_aug import viz

    x, y = next(iter(test.unbatch().batch(8)))
    x = tf.cast(x, tf.float32)
    rows, titles = [x.numpy()], [f"{int(c)}" for c in y]
    for name, layer in (("MixUp", MixUp(alpha=1.0, num_classes=10, seed=0)),
                        ("CutMix", CutMix(alpha=1.0, num_classes=10, seed=0))):
        mixed, soft = layer((x, y))
        rows.append(mixed.numpy())
        titles += [_title(name, s) for s in soft.numpy()]
    mixed, soft, _ = trainer.mix(x, y)
    rows.append(mixed.numpy())
    titles += [_title("Puzzle", s) for s in soft.numpy()]
    viz.save_image_grid(np.concatenate(rows), path, titles=titles,
                        suptitle="originals, MixUp, CutMix, PuzzleMix (class:weight)")


def _title(name, soft):
    top = np.argsort(soft)[::-1][:2]
    return f"{name} " + " ".join(f"{c}:{soft[c]:.2f}" for c in top if soft[c] > 0.005)


def print_table(results: dict) -> None:
    print("| training | test accuracy (mean ± std) | test error | per seed |")
    print("|---|---|---|---|")
    for name, accs in results.items():
        a = np.asarray(accs)
        print(f"| {name} | {a.mean():.4f} ± {a.std():.4f} | {100 * (1 - a.mean()):.2f} % | "
              f"{', '.join(f'{v:.4f}' for v in a)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=98)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="*", help="row names to run (default all)")
    parser.add_argument("--preview", default=None, help="PNG path for mixed samples")
    parser.add_argument("--json", default=None, help="write raw accuracies here")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print the table from --json files of runs with one seed each")
    args = parser.parse_args(argv)
    if args.merge:
        results = {}
        for path in args.merge:
            with open(path) as f:
                for name, accs in json.load(f).items():
                    results.setdefault(name, []).extend(accs)
        print_table(results)
        return
    data = load_dataset("digits")
    test = data.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    rows = {k: v for k, v in ROWS.items() if not args.rows or k in args.rows}
    results = {name: [] for name in rows}
    start = time.time()
    for seed in args.seeds:
        train_ds = few_shot(data.train, args.per_class, seed=seed)
        for name, row in rows.items():
            t0 = time.time()
            accuracy, trainer = train(row, train_ds, test, data.image_shape, seed, args.steps,
                                      args.batch)
            results[name].append(accuracy)
            print(f"seed {seed} {name}: {accuracy:.4f} ({time.time() - t0:.0f}s)", flush=True)
            if args.preview and row == "puzzlemix" and seed == args.seeds[0]:
                save_preview(args.preview, test, trainer)
    epochs = args.steps * args.batch / (10 * args.per_class)
    print(f"\ndigits, {args.per_class} images/class, {args.steps} steps of {args.batch} "
          f"({epochs:.0f} epochs), test on 797 images, seeds {args.seeds} "
          f"({time.time() - start:.0f}s)\n")
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
