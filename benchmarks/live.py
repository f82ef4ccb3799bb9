"""What a live change costs: swapping an AutoAugment policy of the same shape, and changing a
layer's strength, between batches (no retrace, no XLA recompilation expected).

    python benchmarks/live.py              # 224x224, batch 64

Prints the median time of the assignment itself, and the first batch after it relative to a
steady-state batch (1.0x: the compiled program was reused), plus the trace count.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import sample_images  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from keras_aug.core.base import _COMPILED  # noqa: E402
from keras_aug.policies import Policy  # noqa: E402
from keras_aug.policies.registry import OPS  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    out = fn()
    if out is not None:
        np.asarray(out)
    return time.perf_counter() - start


def random_policy(rng, like: Policy) -> Policy:
    names = [n for n in OPS if n != "Identity"]
    subs = [[(str(rng.choice(names)), float(rng.uniform()), int(rng.integers(10))) for _ in sub]
            for sub in like.sub_policies]
    return Policy.from_table(subs, name="random")


def measure(layer, change, x, rounds: int) -> dict:
    for _ in range(3):
        layer(x).numpy()  # trace and compile
    traces = sum(f.experimental_get_tracing_count() for f in _COMPILED[layer].values())
    assign, first, steady = [], [], []
    for i in range(rounds):
        assign.append(_timed(lambda: change(i)))
        first.append(_timed(lambda: layer(x)))
        steady.append(_timed(lambda: layer(x)))
    after = sum(f.experimental_get_tracing_count() for f in _COMPILED[layer].values())
    return {"assign_ms": 1000 * float(np.median(assign)),
            "first_over_steady": float(np.median(first) / np.median(steady)),
            "batch_ms": 1000 * float(np.median(steady)), "new_traces": after - traces}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    x = tf.constant(sample_images(args.size, args.batch), tf.float32)
    rng = np.random.default_rng(0)
    auto = L.AutoAugment("cifar10", ops="all", seed=0)
    policies = [random_policy(rng, auto.policy) for _ in range(args.rounds)]
    rand = L.RandAugment(2, 9, seed=0)
    affine = L.RandomAffine(rotation=0.1, translate_x=0.1, seed=0)
    rows = {
        "AutoAugment: new policy, same shape": measure(
            auto, lambda i: setattr(auto, "policy", policies[i]), x, args.rounds),
        "RandAugment: magnitude": measure(
            rand, lambda i: setattr(rand, "magnitude", float(i % 10)), x, args.rounds),
        "RandomAffine: strength": measure(
            affine, lambda i: setattr(affine, "strength", (i % 10) / 10), x, args.rounds),
    }
    print(f"\n{args.size}x{args.size}, batch {args.batch}, medians of {args.rounds} changes")
    print("| change | assignment | batch | first batch after / steady | new traces |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['assign_ms']:.2f} ms | {r['batch_ms']:.0f} ms | "
              f"{r['first_over_steady']:.2f}x | {r['new_traces']} |")


if __name__ == "__main__":
    main()
