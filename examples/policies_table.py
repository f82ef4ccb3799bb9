"""Augmentation policies on few-shot digits: none vs RandAugment (several M) vs TrivialAugmentWide
vs AutoAugment, 3 seeds; and a preview PNG of each policy on photos and digits.

    python examples/policies_table.py [--per-class 10] [--steps 800] [--seeds 0 1 2]
                                      [--rows none rand-m9-n2 ...] [--preview docs/policies.png]

Trains the demo CNN (`kaug.demo.small_cnn`, the same setting as `kaug demo`) on
`per_class` images per class of the embedded digits and tests on the 797 held-out images.
Rows are policy specs understood by `keras_aug.policies.from_spec`. Prints a markdown table
(mean ± std over seeds).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_aug.data import few_shot, load_dataset  # noqa: E402
from kaug.demo import DemoConfig, DemoData, train_classifier  # noqa: E402
from keras_aug.layers import RandAugment  # noqa: E402
from keras_aug.policies import from_spec  # noqa: E402

# Rows beyond from_spec strings: the RandAugment machinery restricted to geometric ops.
CUSTOM_ROWS = {
    "rand-geometry-m3-n2": lambda seed: RandAugment(
        2, 3, ops=["Identity", "Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"],
        seed=seed, jit_compile=False),
    "rand-geometry-m5-n2": lambda seed: RandAugment(
        2, 5, ops=["Identity", "Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"],
        seed=seed, jit_compile=False),
}
DEFAULT_ROWS = ["none", "rand-m9-n2", "rand-m5-n2", "rand-m5-n1", "trivialaugment",
                "autoaugment-cifar10", "autoaugment-svhn"]


def run_table(rows, per_class, steps, seeds) -> dict[str, list[float]]:
    dataset = load_dataset("digits")
    test = dataset.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    config = DemoConfig(seeds=tuple(seeds), per_class=per_class, steps=steps)
    results = {row: [] for row in rows}
    for seed in seeds:
        data = DemoData(few_shot(dataset.train, per_class, seed=seed), test,
                        dataset.num_classes, dataset.image_shape)
        for row in rows:
            start = time.time()
            # no XLA: on 25 images of 32x32 per step, compiling costs more than it saves
            if row in CUSTOM_ROWS:
                augment = CUSTOM_ROWS[row](seed)
            else:
                augment = None if row == "none" else from_spec(row, seed=seed, jit_compile=False)
            accuracy, _, _ = train_classifier(data, seed, config, augment)
            results[row].append(accuracy)
            print(f"seed {seed} {row}: {accuracy:.3f} ({time.time() - start:.0f}s)", flush=True)
    return results


def save_preview(path: str) -> None:
    """Each policy on 6 photos (scikit-image) and 6 digits, one row per policy."""
    from skimage import data as skdata

    from keras_aug import viz

    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    photos = np.stack([tf.image.resize(p[:, :, :3], (96, 96)).numpy() for p in photos]
                      + [tf.image.resize(skdata.astronaut()[:256, 128:384], (96, 96)).numpy(),
                         tf.image.resize(skdata.coffee()[100:400, 200:500], (96, 96)).numpy()])
    digits = np.stack([x for x, _ in load_dataset("digits/rgb32").test.take(6).as_numpy_iterator()])
    digits = tf.image.resize(tf.cast(digits, tf.float32), (96, 96), "nearest").numpy()
    originals = np.concatenate([photos, digits]).astype("float32")
    specs = ["rand-m9-n2", "trivialaugment", "autoaugment-imagenet", "autoaugment-cifar10",
             "augmix-m3-w3-d-1"]
    rows, titles = [originals], ["original"] * len(originals)
    for spec in specs:
        rows.append(np.asarray(from_spec(spec, seed=0)(originals)))
        titles += [spec] * len(originals)
    viz.save_image_grid(np.concatenate(rows), path, titles=titles, ncols=len(originals),
                        suptitle="one independent draw per image (per sample, fused)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=DEFAULT_ROWS)
    parser.add_argument("--preview", default=None, help="write the policy preview PNG here")
    parser.add_argument("--no-table", action="store_true")
    args = parser.parse_args(argv)
    if args.preview:
        save_preview(args.preview)
        print(f"wrote {args.preview}")
    if args.no_table:
        return
    results = run_table(args.rows, args.per_class, args.steps, args.seeds)
    print(f"\ndigits, {args.per_class} images/class, {args.steps} steps, "
          f"{len(args.seeds)} seeds, test on 797 images\n")
    print("| policy | test accuracy (mean ± std) | per seed |")
    print("|---|---|---|")
    for row, accs in results.items():
        a = np.asarray(accs)
        print(f"| {row} | {a.mean():.3f} ± {a.std():.3f} | {' '.join(f'{v:.3f}' for v in a)} |")


if __name__ == "__main__":
    main()
