"""Benchmark: MixUp/CutMix vs Keras' own in one run, and PuzzleMix's step cost vs a plain step.

    python benchmarks/mixing.py [--sizes 32 224] [--passes 3] [--steps 10] [--skip-layers]
                                [--skip-puzzlemix]

Part 1 times `batch -> map(cast + mix, 2 parallel calls) -> prefetch` with one-hot labels (Keras' layers
get a dict, since they fail on `(images, labels)` tuples): ours and Keras alternate pass by
pass in one process, so both see the same machine load; prints img/s and the ratio.
Part 2 times `train_step` of a classifier with and without `PuzzleMixModel` (same data,
interleaved passes, median), compiled as Keras does by default (`jit_compile="auto"`: no XLA on
a CPU-only machine) and with XLA, with a float32 and a bfloat16 saliency pass, plus the two parts
of PuzzleMix's overhead: the saliency pass and the mask solver + transport (always XLA). Wall-clock
and CPU-time ratios are both printed: on a shared machine the CPU-time one is the steadier.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import format_rate, sample_images  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from keras_aug.ops import puzzlemix  # noqa: E402
from keras_aug.ops.mix import cyclic_partner  # noqa: E402

PARALLEL = 2  # map calls in flight (the machine has 2 cores)
SETTINGS = {32: (256, 20), 224: (64, 6)}  # size -> (batch, batches per pass)


def keras_dict_call(layer):
    """Keras' mixing layers take a dict; `(images, labels)` tuples fail (Keras 3.15.1; see docs/coming-from.md)."""

    def call(data):
        out = layer({"images": data[0], "labels": data[1]})
        return out["images"], out["labels"]

    return call


def _pipeline(augment, images: np.ndarray, batch: int):
    """`batch -> map(cast + augment) -> prefetch` over cached batches, one-hot labels."""
    labels = np.arange(len(images)) % 10
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch, drop_remainder=True)
    # A fixed, small parallelism and buffer (not AUTOTUNE): an idle pipeline can then run at
    # most a few batches ahead while the other one is timed, and the drain below removes them.
    ds = ds.cache().repeat().map(
        lambda x, y: augment((tf.cast(x, tf.float32), tf.one_hot(y, 10))),
        num_parallel_calls=PARALLEL).prefetch(1)
    it = iter(ds)
    for _ in range(3):  # tracing and XLA compilation
        next(it)
    return it


def interleaved_rates(iterators: dict, batch: int, batches: int, passes: int) -> dict:
    """img/s per pipeline, measured in alternating short passes (median over passes).

    On a shared machine the load changes within seconds; alternating ours and the peer's pass
    by pass exposes both to the same load, so their ratio is meaningful even when the absolute
    rates are not. Each pass first drains what the prefetch buffer filled while idle.
    """
    rates = {name: [] for name in iterators}
    for _ in range(passes):
        for name, it in iterators.items():
            for _ in range(PARALLEL + 4):  # drain what was computed while idle
                next(it)
            start = time.perf_counter()
            for _ in range(batches):
                next(it)
            rates[name].append(batches * batch / (time.perf_counter() - start))
    return rates


def mixing_layers(sizes, passes):
    cases = [
        ("MixUp", lambda: L.MixUp(alpha=0.2, num_classes=10), lambda: keras.layers.MixUp(0.2)),
        ("CutMix", lambda: L.CutMix(alpha=1.0, num_classes=10), lambda: keras.layers.CutMix(1.0)),
        ("RandomMixing (ours only)", lambda: L.RandomMixing(num_classes=10), None),
    ]
    for size in sizes:
        batch, batches = SETTINGS.get(size, (64, 8))
        images = sample_images(size, batch * 4)
        print(f"\n## {size}x{size}, batch {batch}, one-hot labels: images/second (ours and "
              f"Keras alternating, {passes} passes of {batches} batches; median)\n")
        print("| layer | ours tf.data | keras tf.data | ratio (median of per-pass ratios) | goal |")
        print("|---|---|---|---|---|")
        for name, ours, peer in cases:
            its = {"ours": _pipeline(ours(), images, batch)}
            if peer is not None:
                try:
                    its["keras"] = _pipeline(keras_dict_call(peer()), images, batch)
                except Exception as err:  # noqa: BLE001 - report the peer's failure, keep going
                    print(f"<!-- keras {name} failed: {type(err).__name__}: {err} -->")
            rates = interleaved_rates(its, batch, batches, passes)
            r_ours = float(np.median(rates["ours"]))
            if "keras" in rates:
                r_keras = float(np.median(rates["keras"]))
                pair = np.asarray(rates["ours"]) / np.asarray(rates["keras"])
                ratio_text = f"{np.median(pair):.2f}× (per pass {pair.min():.2f}–{pair.max():.2f})"
            else:
                r_keras, ratio_text = None, "–"
            goal = "≥ 1× keras" if peer is not None else ""
            peer_rate = format_rate(r_keras) if peer is not None else "–"
            print(f"| {name} | {format_rate(r_ours)} | {peer_rate} | {ratio_text} | {goal} |",
                  flush=True)


def classifier(kind: str, shape, classes=10) -> keras.Model:
    keras.utils.set_random_seed(0)
    if kind == "demo CNN":
        from kaug.demo import small_cnn

        return small_cnn(shape, classes, 0)
    layers = [keras.Input(shape), keras.layers.Rescaling(1 / 255)]
    for width in (64, 128, 256):  # a CIFAR-style VGG block stack
        layers += [keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                   keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D()]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes)]
    return keras.Sequential(layers)


def _timed(run, steps):
    """(wall ms, CPU ms) per call of `run`; CPU time (all threads) is robust to other load."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        run()
    return ((time.perf_counter() - wall) / steps * 1000, (time.process_time() - cpu) / steps * 1000)


def puzzlemix_cost(steps, passes):
    print("\n## PuzzleMix train step vs a plain train step (same data, interleaved passes; ms/step, "
          "median; ratio = PuzzleMix / plain, wall-clock and CPU time)\n")
    print("| model | compile | plain step | PuzzleMix, float32 saliency | ratio wall / CPU | "
          "PuzzleMix, bfloat16 saliency | ratio wall / CPU | saliency pass f32 / bf16 | "
          "masks + transport | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    for kind, shape, batch in (("demo CNN", (32, 32, 1), 64), ("VGG-6 (64-256)", (32, 32, 3), 64)):
        rng = np.random.default_rng(0)
        x = tf.constant(rng.uniform(0, 255, (batch, *shape)).astype("float32"))
        y = tf.one_hot(rng.integers(0, 10, batch), 10)
        # "auto" is Keras' default: XLA only where there is an accelerator (off on this CPU)
        for jit in ("auto", True):
            runs = {}
            plain = classifier(kind, shape)
            plain.compile(keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit)
            runs["plain"] = lambda plain=plain: plain.train_on_batch(x, y)
            for dtype in ("float32", "bfloat16"):
                mixed = L.PuzzleMixModel(classifier(kind, shape), seed=0, saliency_dtype=dtype)
                mixed.compile(keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit)
                runs[dtype] = lambda mixed=mixed: mixed.train_on_batch(x, y)
                saliency = tf.function(mixed.saliency, jit_compile=jit is True)
                runs[f"saliency {dtype}"] = lambda f=saliency: f(x, y).numpy()
            mode = "XLA" if jit is True else f"auto ({'XLA' if plain.jit_compile else 'no XLA'})"
            sal = mixed.saliency(x, y)
            lam = tf.fill([batch], 0.5)
            partner = cyclic_partner(tf.random.uniform([batch]))
            solvers = [tf.function(lambda g=g: puzzlemix.puzzle_mix(x, sal, lam, partner, g)[0],
                                   jit_compile=True) for g in mixed.grid_sizes]
            # grid sizes are drawn uniformly per step: average over them
            runs["solver"] = lambda: [s().numpy() for s in solvers]
            for run in runs.values():  # trace and compile
                run()
                run()
            times = {k: [] for k in runs}
            for _ in range(passes):
                for name, run in runs.items():
                    wall, cpu = _timed(run, steps)
                    scale = len(solvers) if name == "solver" else 1
                    times[name].append((wall / scale, cpu / scale))
            t = {k: np.median(np.array(v), axis=0) for k, v in times.items()}

            def ratio(name):
                return f"**{t[name][0] / t['plain'][0]:.2f}×** / {t[name][1] / t['plain'][1]:.2f}×"

            print(f"| {kind}, {shape[0]}x{shape[1]}x{shape[2]}, batch {batch} | {mode} | "
                  f"{t['plain'][0]:.1f} | {t['float32'][0]:.1f} | {ratio('float32')} | "
                  f"{t['bfloat16'][0]:.1f} | {ratio('bfloat16')} | "
                  f"{t['saliency float32'][0]:.1f} / {t['saliency bfloat16'][0]:.1f} | "
                  f"{t['solver'][0]:.1f} | ≤ 1.6× |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--passes", type=int, default=3,
                        help="layer passes (x5, alternating) and train-step passes")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip-layers", action="store_true")
    parser.add_argument("--skip-puzzlemix", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_layers:
        mixing_layers(args.sizes, 5 * args.passes)
    if not args.skip_puzzlemix:
        puzzlemix_cost(args.steps, args.passes)


if __name__ == "__main__":
    main()
