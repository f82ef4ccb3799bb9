"""`kaug demo` rows of the augmentation library: no augmentation, Keras' layers, ours, mixing and
policies."""
from __future__ import annotations

import keras

from kaug.demo import DemoRow


def keras_builtin(seed: int) -> keras.Sequential:
    """Keras' own layers at a strength that helped on digits before this project started.

    RandomRotation(0.08) + RandomTranslation(0.1) + RandomZoom(0.15): 0.949 ± 0.012 against
    0.902 ± 0.007 without augmentation (3-conv CNN, 10 images/class, 200 epochs, 3 seeds); the
    demo's own numbers are in docs/experiments/demo.md.
    """
    return keras.Sequential(
        [
            keras.layers.RandomRotation(0.08, seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, seed=seed),
            keras.layers.RandomZoom(0.15, seed=seed),
        ],
        name="keras_builtin",
    )


def keras_aug_basic(seed: int = 0) -> keras.Sequential:
    """Our layers: the same geometry as `keras_builtin` in ONE warp, plus contrast and erasing.

    No flips: a mirrored digit is another symbol (2 vs 5). Constant (black) fill, not Keras'
    default reflect: reflecting a zoomed-out or shifted digit paints stroke fragments into the
    border (visible in the preview); digits sit on black.
    """
    from keras_aug import layers as L

    return keras.Sequential(
        [
            L.RandomAffine(rotation=0.08, translate_x=0.1, translate_y=0.1, zoom_y=0.15,
                           fill_mode="constant", seed=seed),
            L.RandomContrast(0.2, seed=seed + 1),
            L.RandomErasing(scale=(0.02, 0.1), p=0.2, seed=seed + 3),
        ],
        name="keras_aug_basic",
    )


def export_augmentation(seed: int = 0) -> keras.layers.Layer:
    """The keras_aug pipeline placed inside the exported demo model."""
    return keras_aug_basic(seed)


def puzzlemix_run(data, seed: int, config) -> tuple[float, dict]:
    """The demo CNN trained through `PuzzleMixModel` (saliency and mixing inside train_step)."""
    from keras_aug.data import make_pipeline
    from keras_aug.core.labels import LabelAccuracy, LabelCrossentropy
    from kaug.demo import small_cnn
    from keras_aug.layers import PuzzleMixModel

    trainer = PuzzleMixModel(small_cnn(data.image_shape, data.num_classes, seed),
                             grid_sizes=(2, 4, 8), seed=seed)  # 32x32 digits: blocks >= 4 px
    trainer.compile(keras.optimizers.Adam(1e-3), loss=LabelCrossentropy(), metrics=[LabelAccuracy()],
                    jit_compile=True)
    pipeline = make_pipeline(data.train, batch_size=config.batch_size, repeat=True, seed=seed)
    history = trainer.fit(pipeline, epochs=config.evals, verbose=0, validation_data=data.test,
                          steps_per_epoch=max(1, config.steps // config.evals))
    return float(trainer.evaluate(data.test, verbose=0)[1]), history.history


def policy_rows() -> list[DemoRow]:
    """Automated augmentation policies (per sample, fused); magnitudes from
    examples/policies_table.py (README, section policies)."""
    from keras_aug.layers import AutoAugment, RandAugment, TrivialAugmentWide

    fast = dict(jit_compile=False)  # 32x32 batches of 25: an XLA compile costs more than it saves
    return [
        DemoRow("RandAugment", augment=lambda seed: RandAugment(2, 9, seed=seed, **fast),
                in_quick=False),
        DemoRow("TrivialAugmentWide", augment=lambda seed: TrivialAugmentWide(seed=seed, **fast),
                in_quick=False),
        DemoRow("AutoAugment (cifar10)",
                augment=lambda seed: AutoAugment("cifar10", seed=seed, **fast), in_quick=False),
    ]


def demo_rows() -> list[DemoRow]:
    from keras_aug.layers import CutMix, MixUp

    return [
        DemoRow("no augmentation", in_quick=True, core=True),
        DemoRow("Keras built-in (rotation+translation+zoom)", augment=keras_builtin, in_quick=True,
                core=True),
        DemoRow("keras_aug basic (affine/colour/erasing)", augment=keras_aug_basic),
        DemoRow("MixUp", augment=lambda seed: MixUp(alpha=0.2, num_classes=10, seed=seed)),
        DemoRow("CutMix", augment=lambda seed: CutMix(alpha=1.0, num_classes=10, seed=seed)),
        DemoRow("PuzzleMix", run=puzzlemix_run),
        *policy_rows(),
    ]
