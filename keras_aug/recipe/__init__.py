"""`kaug train` as a library: from a folder of a few hundred images to an exported model, with
every choice explained (`train(...)` returns the model and a `TrainReport`)."""
from keras_aug.recipe.data import RecipeData, holdout
from keras_aug.recipe.models import recipe_cnn
from keras_aug.recipe.serving import export_classifier
from keras_aug.recipe.train import Candidate, Decision, TrainReport, TrainResult, train

__all__ = ["train", "TrainResult", "TrainReport", "Decision", "Candidate", "RecipeData",
           "holdout", "recipe_cnn", "export_classifier"]
