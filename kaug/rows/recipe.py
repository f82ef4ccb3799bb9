"""The "kaug train (recipe)" row of `kaug demo`: the whole recipe on the seed's few-shot digits."""
from __future__ import annotations

from kaug.demo import DemoRow

# The recipe's budget per seed in the demo: on 2 cores it affords the validated run and the refit
# on every image (~85 s at 10 images/class); a slower machine makes it drop the refit.
RECIPE_MINUTES = 1.5


def recipe_run(data, seed: int, config) -> tuple[float, dict]:
    """`keras_aug.recipe.train` on the row's training images; its own held-out split validates
    the choices, and the demo's test split is read once at the end."""
    import numpy as np

    from keras_aug.data import dataset_to_numpy
    from keras_aug.recipe import RecipeData, train

    images, labels = dataset_to_numpy(data.train)
    test_images, test_labels = [], []
    for x, y in data.test.as_numpy_iterator():
        test_images.append(x)
        test_labels.append(y)
    recipe_data = RecipeData(images.astype(np.uint8), labels,
                             [str(i) for i in range(data.num_classes)],
                             np.concatenate(test_images).astype(np.uint8),
                             np.concatenate(test_labels), source="the demo's few-shot digits")
    quick = dict(minutes=2.0, steps=config.steps) if config.quick else dict(minutes=RECIPE_MINUTES)
    result = train(recipe_data, seed=seed, progress=False, **quick)
    return result.report.test["accuracy"], result.report.history


def demo_rows() -> list[DemoRow]:
    return [DemoRow("kaug train (recipe)", run=recipe_run, in_quick=True, core=True,
                    notes="decides, validates on held-out training images, retrains")]
