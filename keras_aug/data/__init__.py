"""Datasets (embedded digits, image folders, TFDS names) and the tf.data pipeline builder."""
from keras_aug.data.digits import Digits, digits_arrays
from keras_aug.data.loading import LabeledImages, few_shot, load_dataset
from keras_aug.data.pipeline import make_pipeline

__all__ = ["Digits", "digits_arrays", "LabeledImages", "load_dataset", "few_shot", "make_pipeline"]
