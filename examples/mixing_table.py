"""Does mixing help? none vs MixUp vs CutMix vs PuzzleMix, long training, 3 seeds.

    python examples/mixing_table.py [--data digits|photos] [--per-class 0] [--size 16]
                                    [--model vgg] [--width 32] [--base none|crop] [--steps 1500]
                                    [--batch 64] [--alpha 1] [--mixup-alpha A] [--grids 2 4 8] [--eval test|val]
                                    [--seeds 0 1 2] [--rows ...] [--json out.json]
                                    [--preview docs/mixing.png]

`--data digits`: a CNN on the digits training split (`--per-class 0`: all 1,000 images, ~100 per
class; `N`: a class-balanced subset); 797 held-out test images. Digits are 8x8 scans upsampled to
32x32; `--size 16` trains on 16x16 (area-downsampled) copies, which keeps every detail of the scans
at a quarter of the compute. `--base crop` adds a random translation of up to 1/8 of the side to
EVERY arm (mixing comes on top), as the mixing papers do with crop/flip.

`--data photos`: natural colour photos (no download: the ones bundled with scikit-image). The task
is "which photo is this 32x32 patch from?" over 10 photos (astronaut, chelsea, coffee, rocket,
hubble_deep_field, immunohistochemistry, retina, motorcycle_left, camera, coins), each
area-downscaled to a short side of 192 px and cut into three disjoint vertical bands: the left
half gives the training patches (40x40 at a stride of 16; `--base crop` = a random 32x32 crop plus
a horizontal flip, in every arm, as on CIFAR), the next fifth the validation patches and the right
30 % the test patches (32x32 at a stride of 8). Test patches come from a part of each photo the
model never saw, so it must generalise from texture and colour, not memorise content.

Every run trains `--steps` steps of Adam with a cosine learning-rate decay and reports the
accuracy after the LAST step: no early stopping, no checkpoint selection. `--eval val` reports the
validation split instead of the test split (digits: the last 200 training images, held out of
training); use it to choose a setting, then run `--eval test` once. Also reports the clean
training-set accuracy at the end (1.0 = the training set is memorised). Prints a markdown table
(mean ± std over seeds); `--preview` writes a PNG of mixed batches with their label weights.
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
from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy  # noqa: E402
from kaug.demo import small_cnn  # noqa: E402
from keras_aug.layers import (  # noqa: E402
    CutMix, MixUp, PuzzleMixModel, RandomCrop, RandomFlip, RandomTranslation)

ARMS = ("none", "MixUp", "CutMix", "PuzzleMix")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina", "motorcycle_left", "camera", "coins")
PHOTO_SIDE, PATCH, TRAIN_PATCH = 192, 32, 40
BANDS = {"train": (0.0, 0.5), "val": (0.5, 0.7), "test": (0.7, 1.0)}  # fractions of the width


def photo_patches(split: str) -> tuple[np.ndarray, np.ndarray]:
    """`(uint8 patches (N, s, s, 3), int64 labels)` of one split of the photo-patch task.

    Each photo is area-downscaled to a short side of 192 px; the split's vertical band is cut into
    patches (training: 40x40 at a stride of 16, to be random-cropped to 32; validation and test:
    32x32 at a stride of 8). Bands are disjoint, so no test pixel is ever trained on.
    """
    import skimage.color
    import skimage.data

    size, stride = (TRAIN_PATCH, 16) if split == "train" else (PATCH, 8)
    lo, hi = BANDS[split]
    xs, ys = [], []
    for label, name in enumerate(PHOTOS):
        image = (skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left"
                 else getattr(skimage.data, name)())
        if image.ndim == 2:
            image = skimage.color.gray2rgb(image)
        h, w = image.shape[:2]
        scale = PHOTO_SIDE / min(h, w)
        image = tf.image.resize(tf.cast(image[..., :3], tf.float32),
                                [round(h * scale), round(w * scale)], method="area").numpy()
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
        h, w = image.shape[:2]
        x0, x1 = round(lo * w), round(hi * w)
        for top in range(0, h - size + 1, stride):
            for left in range(x0, x1 - size + 1, stride):
                xs.append(image[top:top + size, left:left + size])
                ys.append(label)
    return np.stack(xs), np.asarray(ys, np.int64)


def load_splits(args, seed: int):
    """`(train, eval, clean_train)` unbatched tf.data splits for `args.data` / `args.eval`."""
    if args.data == "photos":
        x, y = photo_patches("train")
        train = tf.data.Dataset.from_tensor_slices((x, y))
        off = (TRAIN_PATCH - PATCH) // 2
        clean = tf.data.Dataset.from_tensor_slices((x[:, off:off + PATCH, off:off + PATCH], y))
        return train, tf.data.Dataset.from_tensor_slices(photo_patches(args.eval)), clean
    data = load_dataset("digits")
    train, held_out = data.train, data.test
    if args.eval == "val":  # hold the last 200 training images out of training
        held_out, train = train.skip(800), train.take(800)
    if args.per_class:
        train = few_shot(train, args.per_class, seed=seed)
    train, held_out = resize(train, args.size), resize(held_out, args.size)
    return train, held_out, train


def vgg_cnn(shape, classes: int, seed: int, width: int = 32) -> keras.Model:
    """A small VGG-style CNN (2+2+1 convs, batch norm, no dropout): capacity to memorise."""
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


def resize(ds: tf.data.Dataset, size: int) -> tf.data.Dataset:
    if size == 32:
        return ds
    return ds.map(lambda x, y: (tf.cast(tf.round(tf.image.resize(
        tf.cast(x, tf.float32), [size, size], method="area")), tf.uint8), y))


class _Then:
    """Base augmentation, then mixing, as one pipeline step that passes labels through."""

    takes_labels = True

    def __init__(self, base, mix):
        self.base, self.mix = base, mix

    def __call__(self, batch):
        images, labels = batch
        if self.base is not None:
            images = self.base(images)
        return (images, labels) if self.mix is None else self.mix((images, labels))


def base_augment(args, seed: int):
    """The augmentation every arm gets (`--base crop`): crop/flip for photos, shifts for digits."""
    if args.base == "none":
        return None
    if args.data == "photos":
        crop, flip = RandomCrop(PATCH, PATCH, seed=seed), RandomFlip("horizontal", seed=seed + 1)
        return lambda x: flip(crop(x))
    return RandomTranslation(0.125, 0.125, seed=seed)


def arm_alpha(arm: str, args) -> float:
    """The arm's Beta(α, α) parameter: `--<arm>-alpha` if given, else `--alpha`."""
    own = getattr(args, f"{arm.lower()}_alpha", None)
    return args.alpha if own is None else own


def arm_name(arm: str, args) -> str:
    if arm == "none":
        return "none"
    if arm == "PuzzleMix":
        return f"PuzzleMix (α {arm_alpha(arm, args):g}, grids {'/'.join(map(str, args.grids))})"
    return f"{arm} (α {arm_alpha(arm, args):g})"


def train(arm: str, train_ds, args, seed: int, classes: int):
    model = build(args, classes, seed)
    trainer, mix = model, None
    if arm == "PuzzleMix":
        trainer = PuzzleMixModel(model, alpha=arm_alpha(arm, args), grid_sizes=tuple(args.grids), seed=seed)
    elif arm == "MixUp":
        mix = MixUp(alpha=arm_alpha(arm, args), num_classes=classes, seed=seed)
    elif arm == "CutMix":
        mix = CutMix(alpha=arm_alpha(arm, args), num_classes=classes, seed=seed)
    base = base_augment(args, seed + 100)
    augment = None if base is None and mix is None else _Then(base, mix)
    lr = keras.optimizers.schedules.CosineDecay(args.lr, args.steps)
    trainer.compile(keras.optimizers.Adam(lr), loss=LabelCrossentropy(), metrics=[LabelAccuracy()],
                    jit_compile=True)
    pipeline = make_pipeline(train_ds, augment=augment, batch_size=args.batch, repeat=True,
                             seed=seed)
    chunk = max(args.steps // args.chunks, 1)
    done, t0 = 0, time.time()
    while done < args.steps:  # in chunks, to print progress (training loss only)
        n = min(chunk, args.steps - done)
        history = trainer.fit(pipeline, epochs=1, steps_per_epoch=n, verbose=0)
        done += n
        print(f"    step {done}: train loss {history.history['loss'][-1]:.3f} "
              f"({time.time() - t0:.0f}s)", flush=True)
    return model


def build(args, classes: int, seed: int) -> keras.Model:
    shape = (PATCH, PATCH, 3) if args.data == "photos" else (args.size, args.size, 1)
    if args.model == "demo":
        return small_cnn(shape, classes, seed)
    return vgg_cnn(shape, classes, seed, width=args.width)


def accuracy(model, ds) -> float:
    model.compile(loss=LabelCrossentropy(), metrics=[LabelAccuracy()], jit_compile=False)
    return float(model.evaluate(ds, verbose=0)[1])


def _batched(ds: tf.data.Dataset) -> tf.data.Dataset:
    return ds.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()


def save_preview(path, train, seed=0, size=32, channels=1, classes=10):
    """Originals, MixUp, CutMix and PuzzleMix (saliency of a briefly trained CNN) with weights;
    `train` is the (unbatched) training split."""
    from keras_aug import viz

    x, y = next(iter(train.shuffle(1000, seed=seed).batch(8)))
    x = tf.cast(x, tf.float32)
    rows, titles = [x.numpy()], [f"{int(c)}" for c in y]
    for name, layer in (("MixUp", MixUp(alpha=1.0, num_classes=classes, seed=seed)),
                        ("CutMix", CutMix(alpha=1.0, num_classes=classes, seed=seed))):
        mixed, soft = layer((x, y))
        rows.append(mixed.numpy())
        titles += [_title(name, s) for s in soft.numpy()]
    trainer = PuzzleMixModel(small_cnn((size, size, channels), classes, seed),
                             grid_sizes=(2, 4, 8), seed=seed)
    trainer.compile(keras.optimizers.Adam(1e-3), loss=LabelCrossentropy())
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


def print_table(results: dict, split: str = "test") -> None:
    print(f"| training | {split} accuracy, last step (mean ± std) | {split} error | per seed | "
          "clean train accuracy |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        a = np.asarray([r["test"] for r in runs])
        t = np.asarray([r["train"] for r in runs])
        print(f"| {name} | {a.mean():.4f} ± {a.std():.4f} | {100 * (1 - a.mean()):.2f} % | "
              f"{', '.join(f'{v:.4f}' for v in a)} | {t.mean():.4f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", choices=["digits", "photos"])
    parser.add_argument("--per-class", type=int, default=0, help="digits; 0: the whole split")
    parser.add_argument("--size", type=int, default=16, choices=[16, 32], help="digits side")
    parser.add_argument("--model", default="vgg", choices=["demo", "vgg"])
    parser.add_argument("--width", type=int, default=32, help="first-block channels of vgg")
    parser.add_argument("--base", default=None, choices=["none", "crop"],
                        help="augmentation of every arm (default: none for digits, crop for "
                             "photos)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=1.0, help="Beta(α, α) of every mixing arm")
    for arm in ARMS[1:]:
        parser.add_argument(f"--{arm.lower()}-alpha", type=float, default=None,
                            help=f"{arm}'s own α (default --alpha)")
    parser.add_argument("--grids", type=int, nargs="+", default=[2, 4, 8],
                        help="PuzzleMix blocks per side")
    parser.add_argument("--eval", default="test", choices=["test", "val"],
                        help="split to report (choose settings on val)")
    parser.add_argument("--chunks", type=int, default=5, help="progress lines per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="*", choices=ARMS, help="arms to run (default all)")
    parser.add_argument("--preview", default=None, help="PNG path for mixed samples")
    parser.add_argument("--json", default=None, help="write raw accuracies here")
    parser.add_argument("--merge", nargs="+", default=None,
                        help="print the table from --json files of earlier runs")
    args = parser.parse_args(argv)
    if args.base is None:
        args.base = "crop" if args.data == "photos" else "none"
    if args.merge:
        results = {}
        for path in args.merge:
            with open(path) as f:
                for name, runs in json.load(f).items():
                    results.setdefault(name, []).extend(runs)
        print_table(results, args.eval)
        return
    classes = len(PHOTOS) if args.data == "photos" else 10
    if args.preview:
        train_ds, _, clean = load_splits(args, 0)
        if args.data == "photos":
            save_preview(args.preview, clean, channels=3, classes=classes)
        else:
            save_preview(args.preview, load_dataset("digits").train)
    arms = [a for a in ARMS if not args.rows or a in args.rows]
    results = {arm_name(a, args): [] for a in arms}
    start = time.time()
    for seed in args.seeds:
        train_ds, held_out, clean = load_splits(args, seed)
        held_out, clean = _batched(held_out), _batched(clean)
        for arm in arms:
            t0 = time.time()
            model = train(arm, train_ds, args, seed, classes)
            run = {"test": accuracy(model, held_out), "train": accuracy(model, clean)}
            results[arm_name(arm, args)].append(run)
            print(f"seed {seed} {arm_name(arm, args)}: {args.eval} {run['test']:.4f}, clean "
                  f"train {run['train']:.4f} ({time.time() - t0:.0f}s)", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)
    n_train = int(train_ds.cardinality())
    n_eval = int(held_out.unbatch().reduce(0, lambda n, _: n + 1))
    epochs = args.steps * args.batch / n_train
    what = (f"photo patches ({n_train} training)" if args.data == "photos" else
            f"digits {'train split' if args.per_class == 0 else f'{args.per_class}/class'} at "
            f"{args.size}x{args.size}")
    print(f"\n{what}, base augmentation {args.base}, {args.model} CNN (width {args.width}), "
          f"{args.steps} steps of {args.batch} (~{epochs:.0f} epochs), cosine lr from {args.lr}, "
          f"last-step {args.eval} accuracy on {n_eval} images, seeds {args.seeds} "
          f"({time.time() - start:.0f}s)\n")
    print_table(results, args.eval)


if __name__ == "__main__":
    main()
