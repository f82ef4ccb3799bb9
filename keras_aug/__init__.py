"""kaug's augmentation toolkit: Keras 3 preprocessing layers that run in-graph on whole batches.

Importing the package registers every serializable keras_aug class with Keras (Keras resolves a
saved "keras_aug>Name" only from its registry), so a `.keras` file loads after just
`import keras_aug`. That costs the TensorFlow import, which any use of the library pays anyway;
the `kaug` command lives apart (package `kaug`) so that `kaug --help` does not pay it.
"""
from keras_aug import backend as _backend  # noqa: F401  (pins the TensorFlow backend first)
# Only the modules that define serializable classes; keras_aug.data (TFDS, +0.3 s) stays lazy.
from keras_aug import adversarial, layers, policies  # noqa: E402,F401
from keras_aug.core import labels  # noqa: E402,F401  (LabelCrossentropy, LabelAccuracy)

__version__ = "0.1.0"
