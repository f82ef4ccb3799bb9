"""`kaug train` against the demo's rows on three offline datasets, at 10 and 50 images/class.

    python examples/train_table.py [--datasets digits photos faces] [--per-class 10 50]
                                   [--seeds 0 1 2] [--minutes-10 1.5] [--minutes-50 3]
                                   [--json runs/train_table.json]

Rows: "no augmentation" and "Keras built-in" are the demo's (its small CNN, 800 steps, Keras'
RandomRotation 0.08 + RandomTranslation 0.1 + RandomZoom 0.15); "kaug train (recipe)" is
`keras_aug.recipe.train` with the given budget, deciding by itself. Datasets (no download):
- digits: scikit-learn's 8x8 digits at 32x32, the demo's data (797 test images);
- photos: "which of 10 photos is this 32x32 patch from?" (examples/mixing_table.py's task, with
  32x32 training patches at a stride of 8 from its training band), 1,155 test patches from a band
  of each photo no training patch touches;
- faces: scikit-image's `lfw_subset`, 100 faces and 100 non-faces (25x25 gray); per seed 50 of
  each class are the training pool and the other 50 the test set.
Results are cached in the JSON, so an interrupted run resumes; prints a markdown table and the
recipe's decisions.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_aug.data import dataset_to_numpy, few_shot_indices, load_dataset  # noqa: E402

ROWS = ("no augmentation", "Keras built-in", "kaug train (recipe)")


def dataset(name: str, seed: int):
    """`(train images, train labels, test images, test labels, class names)`, uint8 images."""
    if name == "digits":
        data = load_dataset("digits")
        x, y = dataset_to_numpy(data.train)
        tx, ty = dataset_to_numpy(data.test)
        return x, y, tx, ty, [str(i) for i in range(10)]
    if name == "photos":
        import mixing_table

        # 32x32 training patches at a stride of 8 from the training band (>= 76 per photo).
        mixing_table.BANDS.setdefault("train32", mixing_table.BANDS["train"])
        x, y = mixing_table.photo_patches("train32")
        tx, ty = mixing_table.photo_patches("test")
        return x, y, tx, ty, list(mixing_table.PHOTOS)
    if name == "faces":
        import skimage.data

        images = np.round(skimage.data.lfw_subset() * 255).astype(np.uint8)[..., None]
        labels = np.repeat([0, 1], 100)
        pool = few_shot_indices(labels, 50, seed=100 + seed)
        test = np.setdiff1d(np.arange(200), pool)
        return images[pool], labels[pool], images[test], labels[test], ["face", "non-face"]
    raise ValueError(f"unknown dataset {name!r}")


def run_rows(name, per_class, seed, minutes):
    from kaug.demo import DemoConfig, DemoData, train_classifier
    from kaug.rows.augmentation import keras_builtin
    from keras_aug.recipe import RecipeData, train

    x, y, tx, ty, names = dataset(name, seed)
    pick = few_shot_indices(y, per_class, seed)
    x, y = x[pick], y[pick]
    test = tf.data.Dataset.from_tensor_slices((tx.astype(np.float32), ty)).batch(256).cache()
    demo = DemoData(tf.data.Dataset.from_tensor_slices((x, y)), test, len(names), x.shape[1:])
    config = DemoConfig(seeds=(seed,), out_dir="runs/train_table")
    out = {}
    for row, augment in (("no augmentation", None), ("Keras built-in", keras_builtin(seed))):
        out[row] = train_classifier(demo, seed, config, augment)[0]
    t0 = time.time()
    result = train(RecipeData(x, y, names, tx, ty, source=name), minutes=minutes, seed=seed,
                   progress=False)
    report = result.report
    out["kaug train (recipe)"] = report.test["accuracy"]
    out["recipe seconds"] = time.time() - t0
    out["decisions"] = {d.topic: d.choice for d in report.decisions}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "photos", "faces"])
    parser.add_argument("--per-class", nargs="+", type=int, default=[10, 50])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--minutes-10", type=float, default=1.5,
                        help="the recipe's budget at 10 images/class (the demo's)")
    parser.add_argument("--minutes-50", type=float, default=3.0,
                        help="the recipe's budget at 50 images/class")
    parser.add_argument("--json", default="runs/train_table.json")
    args = parser.parse_args()
    cache = json.load(open(args.json)) if os.path.exists(args.json) else {}
    for name in args.datasets:
        for per_class in args.per_class:
            for seed in args.seeds:
                key = f"{name}/{per_class}/{seed}"
                if key in cache:
                    continue
                minutes = args.minutes_10 if per_class <= 10 else args.minutes_50
                cache[key] = run_rows(name, per_class, seed, minutes)
                print(key, {r: round(cache[key][r], 4) for r in ROWS}, flush=True)
                os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
                with open(args.json, "w") as f:
                    json.dump(cache, f, indent=1)
    print("| dataset | images/class | " + " | ".join(ROWS) + " | recipe > Keras (seeds) |")
    print("|---|---|" + "---|" * (len(ROWS) + 1))
    for name in args.datasets:
        for per_class in args.per_class:
            runs = [cache[f"{name}/{per_class}/{s}"] for s in args.seeds
                    if f"{name}/{per_class}/{s}" in cache]
            if not runs:
                continue
            cells = []
            for row in ROWS:
                accs = np.array([r[row] for r in runs])
                cells.append(f"{accs.mean():.3f} ± {accs.std():.3f}")
            wins = sum(r["kaug train (recipe)"] > r["Keras built-in"] for r in runs)
            print(f"| {name} | {per_class} | " + " | ".join(cells) + f" | {wins}/{len(runs)} |")
    print("\nrecipe decisions (seed by seed):")
    for key, r in cache.items():
        d = r["decisions"]
        print(f"- {key}: {d.get('model')}; augmentation: {d.get('augmentation')}; "
              f"{d.get('steps')}; final: {d.get('final model')}; regime: {d.get('regime')}; "
              f"{r['recipe seconds']:.0f} s")


if __name__ == "__main__":
    main()
