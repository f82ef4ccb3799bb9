"""Keras layers over keras_aug.ops, one module per family. Each module lists its layers in __all__."""
from keras_aug.layers import color, erase, geometry, mix, pipeline, policy
from keras_aug.layers.color import *  # noqa: F401,F403
from keras_aug.layers.erase import *  # noqa: F401,F403
from keras_aug.layers.geometry import *  # noqa: F401,F403
from keras_aug.layers.mix import *  # noqa: F401,F403
from keras_aug.layers.pipeline import *  # noqa: F401,F403
from keras_aug.layers.policy import *  # noqa: F401,F403

__all__ = [*geometry.__all__, *color.__all__, *erase.__all__, *mix.__all__, *policy.__all__,
           *pipeline.__all__]
