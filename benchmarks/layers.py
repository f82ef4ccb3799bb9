"""Benchmark: keras_aug layers vs Keras' own (and albumentations where installed), same run.

    python benchmarks/layers.py [--sizes 32 224] [--only NAME ...] [--passes 3]

Prints img/s in a tf.data pipeline and inside a compiled step, and the ratio ours/peer per layer.
Cases live in `CASES` below, grouped by family; each family's owner adds its rows there.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    Case,
    albumentations_throughput,
    format_rate,
    model_step_throughput,
    pipeline_throughput,
    ratio,
    sample_images,
)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug.layers as L  # noqa: E402

try:
    import albumentations as A
except ImportError:  # optional peer: pip install kaug[bench]
    A = None

CASES: list[Case] = [
    Case("cast only (ceiling)", lambda: (lambda x, training=True: x)),
    # --- geometry
    Case("RandomFlip", lambda: L.RandomFlip("horizontal"),
         lambda: keras.layers.RandomFlip("horizontal"),
         (lambda: A.HorizontalFlip(p=0.5)) if A else None, goal=8.0),
    # --- color
    # --- erase
    # --- mix
    # --- policies
]

SETTINGS = {32: (256, 40), 224: (64, 8)}  # size -> (batch, batches per pass)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only or c.name.startswith("cast")]
    for size in args.sizes:
        batch, batches = SETTINGS.get(size, (64, 8))
        images = sample_images(size, batch * 4)
        print(f"\n## {size}x{size}, batch {batch}: images/second (median of {args.passes} passes)\n")
        print("| layer | ours tf.data | keras tf.data | ratio | albumentations | ratio "
              "| ours compiled step | keras compiled step | ratio | goal |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for case in cases:
            ours = case.ours()
            r_ours = pipeline_throughput(ours, images, batch, batches, args.passes, case.takes_labels)
            r_keras = s_keras = r_albu = None
            if case.keras is not None:
                r_keras = pipeline_throughput(case.keras(), images, batch, batches, args.passes,
                                              case.takes_labels)
                s_keras = None if case.takes_labels else model_step_throughput(
                    case.keras(), images, batch, batches, args.passes)
            s_ours = None if case.takes_labels else model_step_throughput(
                ours, images, batch, batches, args.passes)
            if case.albumentations is not None:
                r_albu = albumentations_throughput(case.albumentations(), images, batch, batches,
                                                   args.passes)
            goal = f"≥ {case.goal:g}× keras" if case.goal else ""
            print(f"| {case.name} | {format_rate(r_ours)} | {format_rate(r_keras)} | "
                  f"{ratio(r_ours, r_keras)} | {format_rate(r_albu)} | {ratio(r_ours, r_albu)} | "
                  f"{format_rate(s_ours)} | {format_rate(s_keras)} | {ratio(s_ours, s_keras)} | "
                  f"{goal} |", flush=True)


if __name__ == "__main__":
    main()
