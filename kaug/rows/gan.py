"""`kaug demo` row "GAN samples": the few-shot set plus images from a conditional GAN trained on
that same few-shot set.

Training a GAN takes minutes, so small generators ship with the package (`gan.shipped`). The one
for demo seed S was trained only on `few_shot(digits.train, 10, seed=S)`, the exact 100 images
the row's classifier sees, so the row uses no more real data than the others. Seeds without a
shipped generator report NaN rather than borrow another seed's (which saw other real images).
"""
from __future__ import annotations

import math

from kaug.demo import DemoConfig, DemoData, DemoRow

SYNTHETIC_RATIO = 0.5  # synthetic fraction of the classifier's training set


def gan_samples_row(data: DemoData, seed: int, config: DemoConfig) -> tuple[float, dict]:
    from gan.shipped import load_shipped
    from kaug.demo import train_classifier

    sampler = load_shipped(seed, config.per_class)
    if sampler is None:
        return math.nan, {}
    mixed = sampler.mix_with(data.train, ratio=SYNTHETIC_RATIO, seed=seed)
    accuracy, history, _ = train_classifier(data, seed, config, train_ds=mixed)
    return accuracy, history


def demo_rows() -> list[DemoRow]:
    return [
        DemoRow(
            "GAN samples (generator trained on the same 10/class)",
            run=gan_samples_row,
            notes="real + 50 % synthetic from a DiffAugment cGAN trained on the same few-shot set",
        )
    ]
