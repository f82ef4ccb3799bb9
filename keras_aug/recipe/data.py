"""What `kaug train` knows about the user's data: arrays, class names, counts, a held-out part."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np



@dataclass
class RecipeData:
    """The training images as arrays (small data), the optional test split, and their profile.

    Args:
        images: uint8 `(N, H, W, C)`.
        labels: int64 `(N,)` in `[0, len(class_names))`.
        class_names: names in label order.
        test_images, test_labels: the dataset's own test split, if it has one: only ever
            evaluated at the end, never used for a choice.
        skipped: files the loader could not read (listed in the report).
        source: what the data was loaded from (for the report).

    Example:
        >>> data = RecipeData.load("digits", per_class=10)
        >>> data.images.shape, int(data.counts().min())
        ((100, 32, 32, 1), 10)
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    skipped: list[str] = field(default_factory=list)
    source: str = "arrays"

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 1 or 3), got {images.dtype} "
                             f"{images.shape}")
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {len(images)} integers, got {labels.dtype} "
                             f"{labels.shape}")
        if len(self.class_names) < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.class_names}")
        if labels.min() < 0 or labels.max() >= len(self.class_names):
            raise ValueError(f"labels must be in [0, {len(self.class_names)}), got "
                             f"{labels.min()}..{labels.max()}")
        self.images, self.labels = images, labels.astype(np.int64)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.images.shape[1:])

    def counts(self) -> np.ndarray:
        """Training images per class, in label order."""
        return np.bincount(self.labels, minlength=self.num_classes)

    @classmethod
    def load(cls, spec: str, per_class: int | None = None, seed: int = 0,
             image_size: tuple[int, int] | None = None) -> "RecipeData":
        """`load_dataset(spec)`'s train split (`per_class` images of each class if given, picked
        with `seed`) and its test split if any.

        A class with fewer than `per_class` images raises, naming the class and its folder.
        """
        from keras_aug.data import dataset_to_numpy, few_shot_indices, load_dataset

        loaded = load_dataset(spec, image_size=image_size)
        images, labels = dataset_to_numpy(loaded.train)
        names = list(loaded.class_names) or [str(i) for i in range(loaded.num_classes)]
        if per_class is not None:
            index = few_shot_indices(labels, per_class, seed, class_names=names,
                                     folder=loaded.folder)
            images, labels = images[index], labels[index]
        test_images = test_labels = None
        if loaded.test is not None:
            test_images, test_labels = dataset_to_numpy(loaded.test)
        return cls(images.astype(np.uint8), labels, names,
                   None if test_images is None else test_images.astype(np.uint8), test_labels,
                   list(loaded.skipped), spec)


def holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified `(fit, validation)` index split: `fraction` of every class (at least one
    image, and at least one left to fit on) is held out.

    Args:
        labels: integer labels.
        fraction: share of every class held out, in (0, 1).
        seed: which images are held out.

    Example:
        >>> fit, val = holdout(np.repeat(np.arange(2), 10), 0.2, seed=0)
        >>> len(fit), len(val)
        (16, 4)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    fit, val = [], []
    for c in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == c))
        if len(index) < 2:
            raise ValueError(f"class {int(c)} has {len(index)} image(s); holding one out to "
                             "validate every choice needs at least 2 per class")
        n_val = min(len(index) - 1, max(1, int(round(fraction * len(index)))))
        val.append(index[:n_val])
        fit.append(index[n_val:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(val))
