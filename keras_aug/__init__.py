"""kaug's augmentation toolkit: Keras 3 preprocessing layers that run in-graph on whole batches."""
from keras_aug import backend as _backend  # noqa: F401  (pins the TensorFlow backend first)

__version__ = "0.1.0"
