"""kaug gan package: a class-conditional GAN sample generator for small labelled image sets.

    from gan import train_gan, SampleGenerator
    train_gan(few_shot(load_dataset("digits").train, 10), "runs/gan", steps=1200)
    images, labels = SampleGenerator.load("runs/gan").sample(64, seed=0)

Importing the package registers its serializable layers (`SumPool`) with Keras, so saved
generators and discriminators load after just `import gan`.
"""
from keras_aug import backend as _backend  # noqa: F401

from gan.diffaugment import diff_augment
from gan.models import ConditionalGAN, GANConfig, SumPool
from gan.sampler import SampleGenerator
from gan.trainer import train_gan

__all__ = ["ConditionalGAN", "GANConfig", "SampleGenerator", "SumPool", "diff_augment", "train_gan"]
