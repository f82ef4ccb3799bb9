"""Diagnose the fitting regime from learning curves; set augmentation strength from it."""
from keras_aug.diagnose.callbacks import AdaptiveAugmentation, FitDiagnosis
from keras_aug.diagnose.regimes import (
    GOOD_FIT,
    NOT_CONVERGED,
    OVERFITTING,
    REGIMES,
    UNDERFITTING,
    UNDETERMINED,
    Diagnosis,
    diagnose,
    load_history,
)

__all__ = ["AdaptiveAugmentation", "FitDiagnosis", "Diagnosis", "diagnose", "load_history",
           "REGIMES", "UNDERFITTING", "GOOD_FIT", "OVERFITTING", "NOT_CONVERGED", "UNDETERMINED"]
