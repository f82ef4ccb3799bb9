"""Pins Keras to the TensorFlow backend: every op here must also run inside tf.data."""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require_tensorflow_backend() -> None:
    """Raise a clear ImportError when Keras already runs another backend."""
    keras = sys.modules.get("keras")
    backend = keras.backend.backend() if keras is not None else os.environ["KERAS_BACKEND"]
    if backend != "tensorflow":
        raise ImportError(
            f"kaug needs the TensorFlow backend of Keras, but Keras uses {backend!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras (or import kaug first)."
        )


require_tensorflow_backend()
