"""CPU ms per batch of direct layer calls, for comparing two checkouts on a loaded machine.

    PYTHONPATH=<checkout> python benchmarks/layer_cpu.py

Process time (this process' CPU, far less sensitive to other processes than wall time) of
`layer(x).numpy()` on 64 x 224^2 x 3 float32 images, median of 5 blocks of 5 calls after 3
warm-up calls; the keras_aug imported is the one on PYTHONPATH (run it once per checkout).
"""
import statistics
import time

import numpy as np
import tensorflow as tf
import keras_aug
import keras_aug.layers as L

CASES = {
    "RandomFlip": lambda: L.RandomFlip("horizontal", seed=0),
    "RandomRotation": lambda: L.RandomRotation(0.1, seed=0),
    "RandomBrightness": lambda: L.RandomBrightness(0.2, seed=0),
    "RandomColorJitter": lambda: L.RandomColorJitter((0, 255), 0.2, 0.2, (0.3, 0.7), 0.1, seed=0),
    "RandomErasing (pixel)": lambda: L.RandomErasing(mode="pixel", seed=0),
    "RandomErasing p=0.5": lambda: L.RandomErasing(mode="pixel", p=0.5, seed=0),
    "RandAugment N=2 M=9": lambda: L.RandAugment(2, 9, seed=0),
    "RandAugment p=0.5": lambda: L.RandAugment(2, 9, p=0.5, seed=0),
    "AutoAugment imagenet": lambda: L.AutoAugment("imagenet", seed=0),
    "TrivialAugmentWide p=0.5": lambda: L.TrivialAugmentWide(p=0.5, seed=0),
}
x = tf.constant(np.random.default_rng(0).uniform(0, 255, (64, 224, 224, 3)).astype("float32"))
print("keras_aug from", keras_aug.__file__)
for name, make in CASES.items():
    layer = make()
    for _ in range(3):
        layer(x).numpy()
    blocks = []
    for _ in range(5):
        t = time.process_time()
        for _ in range(5):
            layer(x).numpy()
        blocks.append((time.process_time() - t) / 5 * 1e3)
    print(f"{name}\t{statistics.median(blocks):.1f}", flush=True)
