"""Make finetune/weights/digits04_cnn.weights.h5: DigitsCNN04 pretrained on digits 0-4 only.

Uses only the digits *train* split and only its images of digits 0-4 (~500 images); digits 5-9
and the test split are never seen. ~1 minute on 2 CPU cores.

    python examples/pretrain_digits_backbone.py [--epochs 40] [--out finetune/weights/digits04_cnn.weights.h5]
"""
from __future__ import annotations

import argparse

import keras
import numpy as np
import tensorflow as tf

from finetune.digits_backbone import WEIGHTS_PATH, digits_cnn
from finetune.registry import Preprocess
from keras_aug.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default=WEIGHTS_PATH)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    data = load_dataset("digits")
    images, labels = [], []
    for x, y in data.train.as_numpy_iterator():
        if y < 5:
            images.append(x)
            labels.append(y)
    images, labels = np.stack(images), np.asarray(labels)
    test = [(x, y) for x, y in data.test.as_numpy_iterator() if y < 5]
    x_test = np.stack([t[0] for t in test])
    y_test = np.asarray([t[1] for t in test])
    backbone = digits_cnn(input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.RandomTranslation(0.1, 0.1, seed=0)(inputs)
    x = Preprocess("tf")(x)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(images, labels, batch_size=32, epochs=args.epochs, verbose=2)
    _, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"{len(images)} train images of digits 0-4; accuracy on the test split's digits 0-4 "
          f"(evaluation only, never trained on): {acc:.3f}")
    backbone.save_weights(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
