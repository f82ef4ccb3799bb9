"""The "adaptive augmentation" row of `kaug demo`: RandAugment(2, 10) whose strength
`AdaptiveAugmentation` sets from the validation loss gap, starting at 0."""
from __future__ import annotations


def adaptive_run(data, seed: int, config) -> tuple[float, dict]:
    """Train the demo CNN with the controller; the demo's validation data drives it.

    The demo validates on its test split, so in this row the test split also steers the
    strength: a fair comparison holds out a validation split (examples/adaptive_table.py does).
    """
    import keras

    from keras_aug.data import make_pipeline
    from keras_aug.demo import _Accuracy, _Loss, small_cnn
    from keras_aug.diagnose.callbacks import AdaptiveAugmentation
    from keras_aug.layers import RandAugment

    augment = RandAugment(2, 10.0, seed=seed, jit_compile=False)
    model = small_cnn(data.image_shape, data.num_classes, seed)
    model.compile(keras.optimizers.Adam(1e-3), loss=_Loss(), metrics=[_Accuracy()],
                  jit_compile=True)
    pipeline = make_pipeline(data.train, augment=augment, batch_size=config.batch_size,
                             repeat=True, seed=seed)
    history = model.fit(pipeline, epochs=config.evals, verbose=0, validation_data=data.test,
                        steps_per_epoch=max(1, config.steps // config.evals),
                        callbacks=[AdaptiveAugmentation(augment, initial=0.0)])
    return float(model.evaluate(data.test, verbose=0)[1]), history.history


def demo_rows():
    from keras_aug.demo import DemoRow

    return [DemoRow("adaptive augmentation", run=adaptive_run,
                    notes="RandAugment strength from the validation loss gap (from 0)")]
