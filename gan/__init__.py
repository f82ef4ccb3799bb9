"""kaug gan package."""
from keras_aug import backend as _backend  # noqa: F401
