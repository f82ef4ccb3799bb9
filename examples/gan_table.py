"""Measure the GAN sample generator on digits 32x32 (classifier-based; no Inception offline).

(a) TSTR: the demo CNN trained only on 1000 generated images (balanced), tested on the 797 real
    test digits; GAN trained on the full train split (1000 images), and on 10/class.
(b) real-only vs real + synthetic (50 % of the training set) at 10/class, 3 seeds; the GAN of
    seed S is trained on the same `few_shot(train, 10, seed=S)` subset the classifier sees.
(c) the same with and without DiffAugment.

GAN runs are resumable folders under --out, so a re-run only evaluates. `--ship` copies the
10/class DiffAugment generators into gan/weights/ (used by the demo row and the tests) and
writes docs/gan_samples.png.

    python examples/gan_table.py --ship          # ~15-25 min on 2 shared cores
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import numpy as np

import keras_aug  # noqa: F401  (pins the backend)
from keras_aug.data import few_shot, load_dataset
from keras_aug.demo import DemoConfig, DemoData, train_classifier
from gan.sampler import SampleGenerator
from gan.trainer import CONFIG_FILE, GENERATOR_FILE, train_gan

SEEDS = (0, 1, 2)


def gan_run(train, out_dir, steps, **overrides) -> SampleGenerator:
    t0 = time.time()
    train_gan(train, out_dir, steps=steps, resume=True, verbose=False, checkpoint_every=500, **overrides)
    print(f"  GAN {out_dir}: {time.time() - t0:.0f}s", flush=True)
    return SampleGenerator.load(out_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("runs", "gan_table"))
    parser.add_argument("--steps-full", type=int, default=2000)
    parser.add_argument("--steps-few", type=int, default=1200)
    parser.add_argument("--ratio", type=float, default=0.5, help="synthetic fraction in (b)")
    parser.add_argument("--ship", action="store_true", help="copy 10/class generators to gan/weights/")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()

    dataset = load_dataset("digits")
    import tensorflow as tf

    test = dataset.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    config = DemoConfig()
    results: dict = {}

    def classify(train_ds, seed):
        data = DemoData(train_ds, test, dataset.num_classes, dataset.image_shape)
        return train_classifier(data, seed, config, train_ds=train_ds)[0]

    os.makedirs(args.out, exist_ok=True)

    def save():
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)

    for seed in SEEDS:
        real = few_shot(dataset.train, 10, seed=seed)
        row = results.setdefault(f"seed{seed}", {})
        row["real_only"] = classify(real, seed)
        for name, policy in (("diffaugment", "color,translation,cutout"), ("no_augment", ())):
            sampler = gan_run(real, os.path.join(args.out, f"few10_{name}_seed{seed}"), args.steps_few,
                              policy=policy, seed=seed)
            row[f"tstr_{name}"] = classify(sampler.as_dataset(1000, seed=100 + seed), seed)
            row[f"mixed_{name}"] = classify(sampler.mix_with(real, ratio=args.ratio, seed=seed), seed)
        print(f"seed {seed}: {row}", flush=True)
        save()
    if args.ship:
        ship(args.out)

    if not args.skip_full:
        sampler = gan_run(dataset.train, os.path.join(args.out, "full"), args.steps_full)
        results["tstr_full"] = classify(sampler.as_dataset(1000, seed=100), 0)
        print(f"(a) TSTR, GAN on full split: {results['tstr_full']:.3f}", flush=True)
        save()

    print(format_table(results, args))
    if args.ship:
        sample_figure(dataset, args.out)


def format_table(results: dict, args) -> str:
    def stat(key):
        values = np.array([results[f"seed{s}"][key] for s in SEEDS])
        return f"{values.mean():.3f} ± {values.std():.3f}"

    lines = [
        f"digits 32x32, test on 797 real images; demo CNN, 800 steps; 10/class: seeds {SEEDS}, "
        f"GAN {args.steps_few} steps; synthetic fraction {args.ratio}",
        "",
        "| classifier trained on | DiffAugment GAN | GAN without DiffAugment |",
        "|---|---|---|",
        f"| 100 real (10/class), no GAN | {stat('real_only')} | {stat('real_only')} |",
        f"| 100 real + {int(100 * args.ratio / (1 - args.ratio))} synthetic | {stat('mixed_diffaugment')} | "
        f"{stat('mixed_no_augment')} |",
        f"| 1000 synthetic only (TSTR), GAN on 10/class | {stat('tstr_diffaugment')} | "
        f"{stat('tstr_no_augment')} |",
    ]
    if "tstr_full" in results:
        lines.append(f"| 1000 synthetic only (TSTR), GAN on the full train split ({args.steps_full} steps) | "
                     f"{results['tstr_full']:.3f} (seed 0) | – |")
    return "\n".join(lines)


def ship(out: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    weights_dir = os.path.join(here, "..", "gan", "weights")
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
    real_images = np.stack([x for x, _ in real.as_numpy_iterator()])
    rows = [real_images]
    titles = [f"real {k}" for k in range(10)]
    for name in ("few10_diffaugment_seed0", "few10_no_augment_seed0", "full"):
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
