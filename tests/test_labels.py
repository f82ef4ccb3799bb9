"""keras_aug.core.labels: integer ids and one-hot / soft rows told apart in one place."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aug.core.labels import (
    LabelAccuracy,
    LabelCrossentropy,
    class_ids,
    cross_entropy,
    is_soft,
    one_hot,
)

IDS = np.array([2, 0, 1], np.int64)
ROWS = np.eye(3, dtype=np.float32)[IDS]
LOGITS = np.array([[0.1, 0.2, 3.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)


def test_forms_are_read_from_the_shape():
    assert not is_soft(IDS) and not is_soft(IDS[:, None]) and is_soft(ROWS)
    assert is_soft(ROWS, 3) and not is_soft(ROWS, 4)
    # Keras hands a loss its integer labels as floats: the shape still says "ids".
    assert not is_soft(tf.constant(IDS, tf.float32)[:, None], 3)


@pytest.mark.parametrize("labels", [IDS, IDS[:, None], IDS.astype(np.float32), ROWS])
def test_every_form_gives_the_same_ids_rows_loss_and_accuracy(labels):
    np.testing.assert_array_equal(class_ids(labels), IDS)
    np.testing.assert_array_equal(one_hot(labels, 3), ROWS)
    expected = keras.losses.sparse_categorical_crossentropy(IDS, LOGITS, from_logits=True)
    np.testing.assert_allclose(cross_entropy(labels, LOGITS, True), expected, rtol=1e-6)
    np.testing.assert_allclose(float(LabelCrossentropy()(labels, LOGITS)), np.mean(expected),
                               rtol=1e-6)
    metric = LabelAccuracy()
    metric.update_state(labels, LOGITS)
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_loss_config_and_errors():
    loss = LabelCrossentropy(from_logits=False)
    assert LabelCrossentropy.from_config(loss.get_config()).from_logits is False
    with pytest.raises(TypeError, match="from_logits must be True or False, got 1"):
        LabelCrossentropy(from_logits=1)
