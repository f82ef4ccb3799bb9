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
