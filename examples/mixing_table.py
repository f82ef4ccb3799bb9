"""Does mixing help? none vs MixUp vs CutMix vs PuzzleMix on digits, long training, 3 seeds.

    python examples/mixing_table.py [--per-class 0] [--size 16] [--model vgg] [--steps 1500]
                                    [--batch 64] [--seeds 0 1 2] [--rows ...] [--json out.json]
                                    [--preview docs/mixing.png]

Trains a CNN on the digits training split (`--per-class 0`: all 1,000 images, ~100 per class;
`N`: a class-balanced subset) for `--steps` steps of Adam with a cosine learning-rate decay, and
reports the test accuracy (797 held-out images) after the LAST step: no early stopping and no
checkpoint selection, so the test split is never used to choose anything. Digits are 8x8 scans
upsampled to 32x32; `--size 16` trains on 16x16 (area-downsampled) copies, which keeps every
detail of the scans at a quarter of the compute. Also reports the clean training-set accuracy at
the end (1.0 = the training set is memorised). Prints a markdown table (mean ± std over seeds);
`--preview` writes a PNG of mixed batches with their label weights.
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
    "MixUp (α 1)": lambda seed: MixUp(alpha=1.0, num_classes=10, seed=seed),
    "CutMix (α 1)": lambda seed: CutMix(alpha=1.0, num_classes=10, seed=seed),
    "PuzzleMix (α 1, grids 2/4/8)": "puzzlemix",
}


def vgg_cnn(shape, classes: int, seed: int, width: int = 32) -> keras.Model:
    """A small VGG-style CNN (2+2+1 convs, batch norm, no dropout): capacity to memorise digits."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape), keras.layers.Rescaling(1 / 255)]
    for i, w in enumerate((width, 2 * width, 4 * width)):
        for _ in range(2 if i < 2 else 1):
            layers += [keras.layers.Conv2D(w, 3, padding="same", use_bias=False),
                       keras.layers.BatchNormalization(momentum=0.9), keras.layers.ReLU()]
        if i < 2:
            layers.append(keras.layers.MaxPooling2D())
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes)]
    return keras.Sequential(layers, name="vgg_cnn")


def build(model: str, shape, seed: int) -> keras.Model:
    return small_cnn(shape, 10, seed) if model == "demo" else vgg_cnn(shape, 10, seed)


def resize(ds: tf.data.Dataset, size: int) -> tf.data.Dataset:
    if size == 32:
        return ds
    return ds.map(lambda x, y: (tf.cast(tf.round(tf.image.resize(
        tf.cast(x, tf.float32), [size, size], method="area")), tf.uint8), y))


def train(row, train_ds, args, seed):
    shape = (args.size, args.size, 1)
    model = build(args.model, shape, seed)
    trainer, augment = model, None
    if row == "puzzlemix":
        trainer = PuzzleMixModel(model, grid_sizes=(2, 4, 8), seed=seed)
    elif row is not None:
        augment = row(seed)
    lr = keras.optimizers.schedules.CosineDecay(args.lr, args.steps)
    trainer.compile(keras.optimizers.Adam(lr), loss=_Loss(), metrics=[_Accuracy()],
                    jit_compile=True)
    pipeline = make_pipeline(train_ds, augment=augment, batch_size=args.batch, repeat=True,
                             seed=seed)
    chunk = max(args.steps // args.chunks, 1)
    done = 0
    while done < args.steps:  # in chunks, to print progress (training loss only)
        n = min(chunk, args.steps - done)
        history = trainer.fit(pipeline, epochs=1, steps_per_epoch=n, verbose=0)
        done += n
        print(f"    step {done}: train loss {history.history['loss'][-1]:.3f}", flush=True)
    return model


def accuracy(model, ds) -> float:
    model.compile(loss=_Loss(), metrics=[_Accuracy()], jit_compile=False)
    return float(model.evaluate(ds, verbose=0)[1])


def save_preview(path, train, seed=0, size=32):
    """Originals, MixUp, CutMix and PuzzleMix (saliency of a briefly trained CNN) with weights;
    `train` is the (unbatched) training split."""
    from keras_aug import viz

    x, y = next(iter(train.shuffle(1000, seed=seed).batch(8)))
    x = tf.cast(x, tf.float32)
    rows, titles = [x.numpy()], [f"{int(c)}" for c in y]
    for name, layer in (("MixUp", MixUp(alpha=1.0, num_classes=10, seed=seed)),
                        ("CutMix", CutMix(alpha=1.0, num_classes=10, seed=seed))):
        mixed, soft = layer((x, y))
        rows.append(mixed.numpy())
        titles += [_title(name, s) for s in soft.numpy()]
    trainer = PuzzleMixModel(small_cnn((size, size, 1), 10, seed), grid_sizes=(2, 4, 8),
                             seed=seed)
    trainer.compile(keras.optimizers.Adam(1e-3), loss=_Loss())
    trainer.fit(train.batch(64).map(lambda a, b: (tf.cast(a, tf.float32), b)), epochs=3,
                verbose=0)  # a saliency worth showing
    mixed, soft, _ = trainer.mix(x, y)
    rows.append(mixed.numpy())
    titles += [_title("Puzzle", s) for s in soft.numpy()]
    viz.save_image_grid(np.concatenate(rows), path, titles=titles,
                        suptitle="originals, MixUp, CutMix, PuzzleMix (class:weight)")


def _title(name, soft):
    top = np.argsort(soft)[::-1][:2]
    return f"{name} " + " ".join(f"{c}:{soft[c]:.2f}" for c in top if soft[c] > 0.005)


def print_table(results: dict) -> None:
    print("| training | test accuracy, last step (mean ± std) | test error | per seed | "
          "clean train accuracy |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        a = np.asarray([r["test"] for r in runs])
        t = np.asarray([r["train"] for r in runs])
        print(f"| {name} | {a.mean():.4f} ± {a.std():.4f} | {100 * (1 - a.mean()):.2f} % | "
              f"{', '.join(f'{v:.4f}' for v in a)} | {t.mean():.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=0, help="0: the whole training split")
    parser.add_argument("--size", type=int, default=16, choices=[16, 32])
    parser.add_argument("--model", default="vgg", choices=["demo", "vgg"])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--chunks", type=int, default=5, help="progress lines per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="*", help="row names to run (default all)")
    parser.add_argument("--preview", default=None, help="PNG path for mixed samples")
    parser.add_argument("--json", default=None, help="write raw accuracies here")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print the table from --json files of earlier runs")
    args = parser.parse_args(argv)
    if args.merge:
        results = {}
        for path in args.merge:
            with open(path) as f:
                for name, runs in json.load(f).items():
                    results.setdefault(name, []).extend(runs)
        print_table(results)
        return
    data = load_dataset("digits")
    test = resize(data.test, args.size).batch(256).map(
        lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    if args.preview:
        save_preview(args.preview, data.train)
    rows = {k: v for k, v in ROWS.items() if not args.rows or k in args.rows}
    results = {name: [] for name in rows}
    start = time.time()
    for seed in args.seeds:
        train_ds = data.train if args.per_class == 0 else few_shot(data.train, args.per_class,
                                                                   seed=seed)
        train_ds = resize(train_ds, args.size)
        train_eval = train_ds.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
        for name, row in rows.items():
            t0 = time.time()
            model = train(row, train_ds, args, seed)
            run = {"test": accuracy(model, test), "train": accuracy(model, train_eval)}
            results[name].append(run)
            print(f"seed {seed} {name}: test {run['test']:.4f}, clean train {run['train']:.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    n_train = 1000 if args.per_class == 0 else 10 * args.per_class
    epochs = args.steps * args.batch / n_train
    print(f"\ndigits {'train split' if args.per_class == 0 else f'{args.per_class}/class'} at "
          f"{args.size}x{args.size}, {args.model} CNN, {args.steps} steps of {args.batch} "
          f"(~{epochs:.0f} epochs), cosine lr from {args.lr}, last-step test accuracy on 797 "
          f"images, seeds {args.seeds} ({time.time() - start:.0f}s)\n")
    print_table(results)


if __name__ == "__main__":
    main()
