"""kaug gan package: a class-conditional GAN sample generator for small labelled image sets.

    from gan import train_gan, SampleGenerator
    train_gan(few_shot(load_dataset("digits").train, 10), "runs/gan", steps=1200)
    images, labels = SampleGenerator.load("runs/gan").sample(64, seed=0)

Names are imported lazily, so `kaug --help` does not load TensorFlow through this package.
"""
from keras_aug import backend as _backend  # noqa: F401

_EXPORTS = {
    "ConditionalGAN": "gan.models",
    "GANConfig": "gan.models",
    "SampleGenerator": "gan.sampler",
    "train_gan": "gan.trainer",
    "diff_augment": "gan.diffaugment",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gan' has no attribute {name!r}")
