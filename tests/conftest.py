import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_aug  # noqa: E402,F401  (pins the backend before keras is imported by tests)


@pytest.fixture(scope="session")
def digits():
    """The embedded digits dataset (prepared once per test session, offline)."""
    from keras_aug.data import load_dataset

    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def eager_apply(monkeypatch):
    """Run layers' apply steps eagerly and uncompiled (fast for many small behaviour tests)."""
    import tensorflow as tf

    from keras_aug.core import AugmentationLayer

    monkeypatch.setattr(AugmentationLayer, "jit_compile", False)
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)
