"""The small generators shipped in `gan/weights/`, one per `kaug demo` seed.

`digits10_seed{S}.weights.h5` (with its .json config) was trained by
`examples/gan_table.py --ship` only on `few_shot(load_dataset("digits").train, 10, seed=S)`.
"""
from __future__ import annotations

import os

WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")


def shipped_generator_path(seed: int, per_class: int = 10) -> str:
    """Path of the shipped generator trained on `few_shot(digits.train, per_class, seed)`."""
    return os.path.join(WEIGHTS_DIR, f"digits{per_class}_seed{seed}.weights.h5")


def load_shipped(seed: int, per_class: int = 10):
    """The shipped `SampleGenerator` for a demo seed, or None if none was shipped."""
    from gan.sampler import SampleGenerator

    path = shipped_generator_path(seed, per_class)
    return SampleGenerator.load(path) if os.path.exists(path) else None
