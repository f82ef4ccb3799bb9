"""A typical training chain four ways, same run: our Pipeline, a keras.Sequential of our layers,
Keras' own layers, and (with --kerasaug-python) KerasAug's. Prints img/s, ratios, and how far
each of ours is from an exact single-warp reference (one resampling vs several).

    python benchmarks/pipeline.py                      # 224x224 from 256x256, batch 64
    python benchmarks/pipeline.py --kerasaug-python /path/to/kerasaug-venv/bin/python

The chain: RandomResizedCrop + horizontal flip + RandomAffine (rotation, translation, shear) +
colour jitter + RandomErasing. Keras 3.15 has no RandomResizedCrop (keras#21822): its chain uses
RandomCrop + RandomZoom, the nearest it has, and RandomRotation/Translation/Shear for the affine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import format_rate, pipeline_throughput, ratio, sample_images  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from keras_aug.core.random import Draws  # noqa: E402
from keras_aug.ops import geometry as ops  # noqa: E402


def our_layers(size: int) -> list:
    return [
        L.RandomResizedCrop(size, size, scale=(0.35, 1.0)),
        L.RandomFlip("horizontal"),
        L.RandomAffine(rotation=0.05, translate_x=0.1, translate_y=0.1, shear_x=0.1),
        L.RandomColorJitter((0, 255), 0.2, 0.2, (0.4, 0.6), 0.02),
        L.RandomErasing(p=0.25),
    ]


def keras_chain(size: int) -> keras.Sequential:
    k = keras.layers
    return keras.Sequential([
        k.RandomCrop(size, size), k.RandomZoom((-0.3, 0.0)), k.RandomFlip("horizontal"),
        k.RandomRotation(0.05), k.RandomTranslation(0.1, 0.1), k.RandomShear(0.1),
        k.RandomColorJitter((0, 255), 0.2, 0.2, (0.4, 0.6), 0.02),
        k.RandomErasing(factor=0.25, value_range=(0, 255)),
    ])


KERASAUG_CHAIN = (
    "Sequential([RandomResizedCrop({size}, scale=(0.35, 1.0), antialias=False), "
    "RandomFlip('horizontal'), RandomAffine(18, (0.1, 0.1), None, (-5.7, 5.7, 0.0, 0.0), "
    "padding_mode='reflect'), "
    "ColorJitter(0.2, 0.2, 0.2, 0.02), RandomErasing(p=0.25)])"
)


def kerasaug_rate(python: str, images: np.ndarray, size: int, batch: int,
                  batches: int) -> float | None:
    """KerasAug's chain timed by benchmarks/kerasaug_worker.py in its own environment."""
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kerasaug_worker.py")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "images.npy")
        np.save(path, images)
        request = {"images": path, "spec": KERASAUG_CHAIN.format(size=size), "batch": batch,
                   "batches": batches,
                   "takes_labels": False, "range_dependent": True}
        done = subprocess.run([python, worker], input=(json.dumps(request) + "\n") * 3,
                              text=True, capture_output=True, cwd=tmp, timeout=1800)
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    answers = [a for a in answers if "rate" in a or "error" in a]
    if not answers:
        print(f"KerasAug worker failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    if answers[-1].get("error"):
        print(f"KerasAug chain failed: {answers[-1]['error']}", file=sys.stderr)
        return None
    return float(np.median([a["rate"] for a in answers]))  # one pass per request


def sharpness(size: int, images: np.ndarray) -> dict[str, float]:
    """Mean absolute difference (0-255 units) of the geometric part (crop + flip + affine) to an
    exact reference, ImageProjectiveTransformV3 of the product matrix, for the SAME parameters:
    fused (one warp) vs sequential (one resampling per layer, as a Sequential does)."""
    layers = our_layers(size)[:3]
    x = tf.constant(images[:16], tf.float32)
    draws = Draws(tf.constant([11, 12], tf.int64))
    height, width = x.shape[1], x.shape[2]
    proxy, matrices, sequential = x, [], x
    for layer in layers:
        params = layer.sample_params(16, proxy, draws)
        matrices.append(layer.geometry_matrix(params, height, width))
        sequential = layer.augment_images(sequential, params)
        height, width = layer.output_size(height, width)
        proxy = tf.zeros([16, height, width, 3])
    matrix = ops.compose(*matrices)
    fused = ops.warp(x, matrix, "bilinear", "reflect", 0.0, output_size=(height, width))
    m = tf.reshape(matrix, [-1, 9])
    reference = tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=(m / m[:, 8:9])[:, :8], output_shape=[height, width],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from fill-mode borders
    return {name: float(tf.reduce_mean(tf.abs(out[inner] - reference[inner])))
            for name, out in (("Pipeline", fused), ("Sequential of ours", sequential))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--kerasaug-python", help="python of a venv with `pip install keras-aug`")
    args = parser.parse_args(argv)
    images = sample_images(args.size * 8 // 7, 4 * args.batch)

    def rate(augment):
        return pipeline_throughput(augment, images, args.batch, args.batches, args.passes)

    rates = {
        "Pipeline": rate(L.Pipeline(our_layers(args.size))),
        "Sequential of ours": rate(keras.Sequential(our_layers(args.size))),
        "Keras 3 layers": rate(keras_chain(args.size)),
    }
    if args.kerasaug_python:
        rates["KerasAug"] = kerasaug_rate(args.kerasaug_python, images, args.size, args.batch,
                                          args.batches)
    errors = sharpness(args.size, images)
    print(f"\nchain at {args.size}x{args.size} (input {images.shape[1]}x{images.shape[2]}), "
          f"batch {args.batch}, tf.data img/s (median of {args.passes})")
    print("| chain | img/s | Pipeline / this | MAD to one exact warp |")
    print("|---|---|---|---|")
    for name, value in rates.items():
        mad = f"{errors[name]:.2f}" if name in errors else "–"
        print(f"| {name} | {format_rate(value)} | {ratio(rates['Pipeline'], value)} | {mad} |")


if __name__ == "__main__":
    main()
