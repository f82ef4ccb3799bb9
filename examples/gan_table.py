"""Measure the GAN sample generator on digits 32x32 (classifier-based; no Inception offline).

(a) TSTR: the demo CNN trained only on 1000 generated images (balanced), tested on the 797 real
    test digits; GAN trained on the full train split (1000 images), and on 10/class; 3 seeds.
(b) real-only vs real + synthetic (50 % of the training set) at 10/class, 3 seeds; the GAN of
    seed S is trained on the same `few_shot(train, 10, seed=S)` subset the classifier sees.
    Two ways of mixing, both `SampleGenerator.mix_with` options: plain (100 real + 100
    synthetic) and filtered (`real_repeats=10, classifier=<the real-only CNN>`: 1000 synthetic
    images, the most confidently classified third of 3000 candidates, with the real set 10x).
(c) the same with and without DiffAugment.
Every classifier is the demo CNN (800 steps, batch 25, same seed). The test split is only used
for the numbers reported here; the mixing options were chosen on seed 0 with the rest of the
train split as validation (see README).

GAN runs and results are resumable under --out, so a re-run only evaluates what is missing.
`--ship` copies the 10/class DiffAugment generators into gan/weights/ (used by the demo row and
the tests) and writes docs/gan_samples.png.

    python examples/gan_table.py --ship          # ~60 min on 2 shared cores
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np

import keras_aug  # noqa: F401  (pins the backend)
from keras_aug.data import dataset_to_numpy, few_shot, load_dataset
from gan.sampler import SampleGenerator
from gan.shipped import WEIGHTS_DIR
from gan.trainer import CONFIG_FILE, GENERATOR_FILE, train_gan
from kaug.demo import DemoConfig, DemoData, train_classifier

SEEDS = (0, 1, 2)
ARMS = (("diffaugment", "color,translation,cutout"), ("no_augment", ()))


def gan_run(train, out_dir, steps, **overrides) -> SampleGenerator:
    t0 = time.time()
    train_gan(train, out_dir, steps=steps, resume=True, verbose=False, checkpoint_every=500,
              sample_every=0, **overrides)
    print(f"  GAN {out_dir}: {time.time() - t0:.0f}s", flush=True)
    return SampleGenerator.load(out_dir)


def within_class_l1(images: np.ndarray, labels: np.ndarray, per_class: int = 10) -> float:
    """Mean L1 distance (0..1 scale) between images of the same class: diversity."""
    x = images.astype(np.float32) / 255.0
    distances = []
    for k in np.unique(labels):
        group = x[labels == k][:per_class].reshape(-1, x[0].size)
        pairwise = np.abs(group[:, None] - group[None]).mean(axis=-1)
        distances.append(pairwise.sum() / (len(group) * (len(group) - 1)))
    return float(np.mean(distances))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("runs", "gan_table"))
    parser.add_argument("--steps-full", type=int, default=2000)
    parser.add_argument("--steps-few", type=int, default=1200)
    parser.add_argument("--diversity-weight", type=float, default=0.3, help="GANConfig.diversity_weight")
    parser.add_argument("--ratio", type=float, default=0.5, help="synthetic fraction in (b)")
    parser.add_argument("--ship", action="store_true", help="copy 10/class generators to gan/weights/")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()

    dataset = load_dataset("digits")
    import tensorflow as tf

    test = dataset.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    config = DemoConfig()
    os.makedirs(args.out, exist_ok=True)
    results_path = os.path.join(args.out, "results.json")
    results: dict = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            results = json.load(f)

    def save():
        with open(results_path, "w") as f:
            json.dump(results, f, indent=1)

    def classify(train_ds, seed):
        data = DemoData(train_ds, test, dataset.num_classes, dataset.image_shape)
        accuracy, _, model = train_classifier(data, seed, config, train_ds=train_ds)
        return accuracy, model

    def measure(row, key, fn):
        if key not in row:
            t0 = time.time()
            row[key] = fn()
            print(f"  {key}: {row[key]:.3f} ({time.time() - t0:.0f}s)", flush=True)
            save()

    overrides = dict(diversity_weight=args.diversity_weight)
    for seed in SEEDS:
        real = few_shot(dataset.train, 10, seed=seed)
        row = results.setdefault(f"seed{seed}", {})
        real_images, real_labels = dataset_to_numpy(real)
        row["l1_real"] = within_class_l1(real_images, real_labels)
        teacher = None
        for name, policy in ARMS:
            sampler = gan_run(real, os.path.join(args.out, f"few10_{name}_seed{seed}"), args.steps_few,
                              policy=policy, seed=seed, **overrides)
            row[f"l1_{name}"] = within_class_l1(*sampler.sample(100, seed=seed))
            measure(row, f"tstr_{name}", lambda: classify(sampler.as_dataset(1000, seed=100 + seed), seed)[0])
            measure(row, f"mixed_{name}",
                    lambda: classify(sampler.mix_with(real, ratio=args.ratio, seed=seed), seed)[0])
            if name == "diffaugment":
                if teacher is None:
                    accuracy, teacher = classify(real, seed)
                    row["real_only"] = accuracy
                    print(f"  real_only: {accuracy:.3f}", flush=True)
                    save()
                measure(row, f"filtered_{name}", lambda: classify(sampler.mix_with(
                    real, ratio=args.ratio, seed=seed, real_repeats=10, classifier=teacher), seed)[0])
        print(f"seed {seed}: {row}", flush=True)
        save()
    if args.ship:
        ship(args.out)

    if not args.skip_full:
        for seed in SEEDS:
            sampler = gan_run(dataset.train, os.path.join(args.out, f"full_seed{seed}"), args.steps_full,
                              seed=seed, **overrides)
            row = results.setdefault(f"seed{seed}", {})
            measure(row, "tstr_full", lambda: classify(sampler.as_dataset(1000, seed=100 + seed), seed)[0])

    print(format_table(results, args))
    if args.ship:
        sample_figure(dataset, args.out)


def format_table(results: dict, args) -> str:
    def stat(key):
        values = np.array([results[f"seed{s}"][key] for s in SEEDS if key in results[f"seed{s}"]])
        if len(values) == 0:
            return "–"
        return f"{values.mean():.3f} ± {values.std():.3f}" + ("" if len(values) == len(SEEDS) else f" ({len(values)} seeds)")

    n_syn = int(100 * args.ratio / (1 - args.ratio))
    lines = [
        f"digits 32x32, test on 797 real images; demo CNN, 800 steps; seeds {SEEDS}; GAN "
        f"{args.steps_few} steps at 10/class, {args.steps_full} on the full split, diversity_weight "
        f"{args.diversity_weight}; synthetic fraction {args.ratio}",
        "",
        "| classifier trained on | DiffAugment GAN | GAN without DiffAugment |",
        "|---|---|---|",
        f"| 100 real (10/class), no GAN | {stat('real_only')} | {stat('real_only')} |",
        f"| 100 real + {n_syn} synthetic (`mix_with(real, ratio={args.ratio})`) | {stat('mixed_diffaugment')} | "
        f"{stat('mixed_no_augment')} |",
        f"| 100 real ×10 + {10 * n_syn} filtered synthetic (`real_repeats=10, classifier=`real-only CNN) | "
        f"{stat('filtered_diffaugment')} | – |",
        f"| 1000 synthetic only (TSTR), GAN on 10/class | {stat('tstr_diffaugment')} | {stat('tstr_no_augment')} |",
        f"| 1000 synthetic only (TSTR), GAN on the full train split | {stat('tstr_full')} | – |",
        f"| within-class L1 of 10/class samples (real 100: {stat('l1_real')}) | {stat('l1_diffaugment')} | "
        f"{stat('l1_no_augment')} |",
        "",
        "per seed (real-only / mixed / filtered / TSTR 10/class / TSTR full): "
        + "; ".join(
            f"{s}: " + " / ".join(f"{results[f'seed{s}'].get(k, float('nan')):.3f}" for k in (
                "real_only", "mixed_diffaugment", "filtered_diffaugment", "tstr_diffaugment", "tstr_full"))
            for s in SEEDS
        ),
    ]
    return "\n".join(lines)


def ship(out: str) -> None:
    weights_dir = WEIGHTS_DIR
    os.makedirs(weights_dir, exist_ok=True)
    for seed in SEEDS:
        run = os.path.join(out, f"few10_diffaugment_seed{seed}")
        target = os.path.join(weights_dir, f"digits10_seed{seed}")
        shutil.copyfile(os.path.join(run, GENERATOR_FILE), target + ".weights.h5")
        with open(os.path.join(run, CONFIG_FILE)) as f:
            config = json.load(f)
        config["extra"]["trained_on"] = f"few_shot(load_dataset('digits').train, 10, seed={seed})"
        with open(target + ".json", "w") as f:
            json.dump(config, f, indent=1)
        print("shipped", target + ".weights.h5", os.path.getsize(target + ".weights.h5") // 1024, "KiB")


def sample_figure(dataset, out: str) -> None:
    from keras_aug.viz import save_image_grid

    here = os.path.dirname(os.path.abspath(__file__))
    real = few_shot(dataset.train, 1, seed=0)
    real_images = dataset_to_numpy(real)[0]
    rows = [real_images]
    titles = [f"real {k}" for k in range(10)]
    for name in ("few10_diffaugment_seed0", "few10_no_augment_seed0", "full_seed0"):
        path = os.path.join(out, name)
        if os.path.exists(os.path.join(path, GENERATOR_FILE)):
            images, labels = SampleGenerator.load(path).sample(20, seed=1)
            rows.append(images)
            titles += [f"{name.split('_seed')[0]} {k}" for k in labels]
    save_image_grid(np.concatenate(rows), os.path.join(here, "..", "docs", "gan_samples.png"),
                    titles=titles, ncols=10,
                    suptitle="row 1: real; rows 2-3: GAN on 10/class with DiffAugment; "
                             "4-5: without; 6-7: GAN on the full train split")


if __name__ == "__main__":
    main()
