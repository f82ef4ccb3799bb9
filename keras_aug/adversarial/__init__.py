"""Adversarial examples as augmentation: FGSM / PGD attacks, an adversarial-training wrapper
(PGD, fast FGSM, TRADES) and robustness evaluation."""
from keras_aug.adversarial.attacks import fgsm, pgd
from keras_aug.adversarial.evaluation import (
    evaluate_robustness,
    format_robustness_table,
    save_adversarial_examples,
)
from keras_aug.adversarial.outputs import resolve_from_logits
from keras_aug.adversarial.training import AdversarialTraining, CatastrophicOverfittingGuard

__all__ = [
    "fgsm",
    "pgd",
    "AdversarialTraining",
    "CatastrophicOverfittingGuard",
    "evaluate_robustness",
    "format_robustness_table",
    "save_adversarial_examples",
    "resolve_from_logits",
]
