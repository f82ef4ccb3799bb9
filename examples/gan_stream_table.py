"""Can GAN samples lift a 10/class classifier by 3 points? Fresh-stream mixing on digits 32x32.

Every classifier is the demo CNN (`kaug.demo.small_cnn`, Adam 1e-3, batch 25, 800 steps, same
seed in every arm, no other augmentation). The GAN of seed S is the 1200-step DiffAugment run of
`examples/gan_table.py` (`runs/gan_table/few10_diffaugment_seedS`, trained only on
`few_shot(train, 10, seed=S)`, the same 100 images the classifier sees; trained here if missing).

Arms (labels one-hot; `ls` = label smoothing):
    real          the 100 real images (the demo protocol)
    stream_ema    real + a fresh synthetic stream: half of every batch is NEW generator samples
                  (`SampleGenerator.as_dataset()` endless, so ~10k distinct images in 800 steps
                  instead of 100-1000 fixed ones), EMA generator
    stream_raw    the same from the raw (non-EMA) generator: `SampleGenerator.load(run, ema=False)`
    stream_raw_ls stream_raw with synthetic labels smoothed by 0.1 (real labels hard)
    real_ls       control: real only, labels smoothed by 0.1 (is the gain the GAN's or the smoothing's?)
    stream_raw_ls_all  stream_raw with every label smoothed by 0.1 (same classifier as real_ls)
    real200       oracle, test split only: the 100 + 10/class more REAL images (what perfect
                  synthetic data could at most be worth)

--split val: for seed S the 900 train images outside the few-shot subset (choose options here);
--split test: the 797 test images (final table only). Results are resumable in --out.

    python examples/gan_stream_table.py --split val      # ~20 min on 2 shared cores
    python examples/gan_stream_table.py --split test
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import keras_aug  # noqa: F401  (pins the backend)
import keras
import tensorflow as tf
from keras_aug.data import dataset_to_numpy, few_shot, few_shot_indices, load_dataset, make_pipeline
from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy
from kaug.demo import DemoConfig, small_cnn
from gan.sampler import SampleGenerator

SEEDS = (0, 1, 2)
ARMS = ("real", "stream_ema", "stream_raw", "stream_raw_ls", "real_ls", "stream_raw_ls_all", "real200")
RATIO = 0.5  # synthetic fraction of every batch
SMOOTH = 0.1


def fresh_stream(real: tf.data.Dataset, sampler: SampleGenerator, ratio: float, seed: int,
                 batch_size: int, smooth_synthetic: float = 0.0, smooth_real: float = 0.0) -> tf.data.Dataset:
    """Endless batches: real examples (reshuffled each pass) and never-repeated generator samples,
    each example synthetic with probability `ratio`; labels one-hot, optionally smoothed."""
    k = sampler.num_classes

    def prepare(smooth):
        return lambda x, y: (tf.cast(x, tf.float32), tf.one_hot(y, k) * (1.0 - smooth) + smooth / k)

    real_part = real.map(prepare(smooth_real)).cache().shuffle(1000, seed=seed).repeat()
    synthetic = sampler.as_dataset(seed=100 + seed).shuffle(512, seed=seed).map(prepare(smooth_synthetic))
    mixed = tf.data.Dataset.sample_from_datasets([real_part, synthetic], [1.0 - ratio, ratio], seed=seed)
    return mixed.batch(batch_size).prefetch(2)


def classify(pipeline: tf.data.Dataset, evaluation: tf.data.Dataset, seed: int, config: DemoConfig,
             image_shape, num_classes: int) -> float:
    """The demo CNN trained for `config.steps` steps on `pipeline`; accuracy on `evaluation`."""
    model = small_cnn(image_shape, num_classes, seed)
    model.compile(keras.optimizers.Adam(1e-3), loss=LabelCrossentropy(), metrics=[LabelAccuracy()], jit_compile=True)
    model.fit(pipeline, epochs=1, steps_per_epoch=config.steps, verbose=0)
    return float(model.evaluate(evaluation, verbose=0)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("val", "test"), required=True)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--gan-dir", default=os.path.join("runs", "gan_table"))
    parser.add_argument("--out", default=os.path.join("runs", "gan_stream"))
    args = parser.parse_args()
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; known: {ARMS}")
    seeds = [int(s) for s in args.seeds.split(",")]

    dataset = load_dataset("digits")
    config = DemoConfig()
    train_x, train_y = dataset_to_numpy(dataset.train)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{args.split}.json")
    results = json.load(open(path)) if os.path.exists(path) else {}

    for seed in seeds:
        real = few_shot(dataset.train, 10, seed=seed)
        chosen = few_shot_indices(train_y, 10, seed)
        rest = np.ones(len(train_y), bool)
        rest[chosen] = False
        if args.split == "val":
            evaluation = tf.data.Dataset.from_tensor_slices((train_x[rest], train_y[rest]))
        else:
            evaluation = dataset.test
        evaluation = evaluation.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
        run_dir = os.path.join(args.gan_dir, f"few10_diffaugment_seed{seed}")
        if not os.path.exists(os.path.join(run_dir, "checkpoints")):
            from gan_table import gan_run

            gan_run(real, run_dir, 1200, policy="color,translation,cutout", seed=seed, diversity_weight=0.3)
        row = results.setdefault(f"seed{seed}", {})
        for arm in arms:
            if arm in row or (arm == "real200" and args.split == "val"):
                continue
            t0 = time.time()
            smoothed = real.map(lambda x, y: (x, tf.one_hot(y, 10) * (1 - SMOOTH) + SMOOTH / 10))
            if arm == "real":
                pipeline = make_pipeline(real, batch_size=config.batch_size, repeat=True, seed=seed)
            elif arm == "real_ls":
                pipeline = make_pipeline(smoothed, batch_size=config.batch_size, repeat=True, seed=seed)
            elif arm == "real200":
                extra = few_shot(tf.data.Dataset.from_tensor_slices((train_x[rest], train_y[rest])), 10, seed=seed)
                pipeline = make_pipeline(real.concatenate(extra), batch_size=config.batch_size, repeat=True,
                                         seed=seed)
            else:
                sampler = SampleGenerator.load(run_dir, ema=(arm == "stream_ema"))
                pipeline = fresh_stream(
                    real, sampler, RATIO, seed, config.batch_size,
                    smooth_synthetic=SMOOTH if arm.startswith("stream_raw_ls") else 0.0,
                    smooth_real=SMOOTH if arm == "stream_raw_ls_all" else 0.0)
            row[arm] = classify(pipeline, evaluation, seed, config, dataset.image_shape, dataset.num_classes)
            print(f"{args.split} seed {seed} {arm}: {row[arm]:.4f} ({time.time() - t0:.0f}s)", flush=True)
            with open(path, "w") as f:
                json.dump(results, f, indent=1)
    print(format_table(results, args.split))


def format_table(results: dict, split: str) -> str:
    lines = [f"| arm ({split}) | mean ± std | " + " | ".join(f"seed {s}" for s in SEEDS) + " | vs real |",
             "|---|---|" + "---|" * len(SEEDS) + "---|"]
    for arm in ARMS:
        values = [results.get(f"seed{s}", {}).get(arm) for s in SEEDS]
        if all(v is None for v in values):
            continue
        have = np.array([v for v in values if v is not None])
        base = [results.get(f"seed{s}", {}).get("real") for s in SEEDS]
        deltas = [v - b for v, b in zip(values, base) if v is not None and b is not None]
        delta = f"{100 * np.mean(deltas):+.1f} pt" if deltas else "–"
        cells = " | ".join("–" if v is None else f"{v:.3f}" for v in values)
        lines.append(f"| {arm} | {have.mean():.3f} ± {have.std():.3f} | {cells} | {delta} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
