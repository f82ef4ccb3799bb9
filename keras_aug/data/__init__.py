"""Datasets (embedded digits, image folders, TFDS names) and the tf.data pipeline builder."""
from keras_aug.data.digits import Digits, digits_arrays
from keras_aug.data.images import resize_images
from keras_aug.data.loading import (LabeledImages, SkippedFilesWarning, dataset_to_numpy, few_shot,
                                    few_shot_indices, load_dataset)
from keras_aug.data.pipeline import make_pipeline

__all__ = ["Digits", "digits_arrays", "LabeledImages", "dataset_to_numpy", "load_dataset", "few_shot", "few_shot_indices", "make_pipeline",
           "resize_images", "SkippedFilesWarning"]
