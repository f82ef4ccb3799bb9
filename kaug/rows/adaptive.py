"""The "adaptive augmentation" row of `kaug demo`: RandAugment(2, 10) whose strength
`AdaptiveAugmentation` sets from the validation loss gap, starting at 0."""
from __future__ import annotations

from kaug.demo import DemoRow


def adaptive_run(data, seed: int, config) -> tuple[float, dict]:
    """Train the demo CNN with the controller; the demo's validation data drives it.

    The demo validates on its test split, so in this row the test split also steers the
    strength: a fair comparison holds out a validation split (examples/adaptive_table.py does).
    """
    from kaug.demo import train_classifier
    from keras_aug.diagnose import AdaptiveAugmentation
    from keras_aug.layers import RandAugment

    augment = RandAugment(2, 10.0, seed=seed, jit_compile=False)
    controller = AdaptiveAugmentation(augment, initial=0.0)
    accuracy, history, _ = train_classifier(data, seed, config, augment, callbacks=[controller])
    return accuracy, history


def demo_rows() -> list[DemoRow]:
    return [DemoRow("adaptive augmentation", run=adaptive_run,
                    notes="RandAugment strength from the validation loss gap (from 0)")]
