"""The data a search runs on (small labelled image arrays) and how it is split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from keras_aug.core.validation import check_integer
from keras_aug.search.child import ChildConfig
from keras_aug.search.space import SearchSpace


@dataclass
class SearchTask:
    """Images and labels to search a policy for, the space to search, and the child model's
    training budget (the same for every candidate, fold or population member).

    Args:
        images: uint8 array `(N, H, W, C)`, values 0..255.
        labels: integer class labels `(N,)` in `[0, num_classes)`.
        num_classes: number of classes.
        space: the `SearchSpace` of candidate policies.
        child: the `ChildConfig` every child model trains with.

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=5)
        >>> task.images.shape, task.num_classes
        ((50, 32, 32, 1), 10)
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    space: SearchSpace = field(default_factory=SearchSpace)
    child: ChildConfig = field(default_factory=ChildConfig)

    def __post_init__(self):
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be (N, H, W, 1 or 3), got shape {images.shape}")
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 in 0..255, got {images.dtype}")
        if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {len(images)} integers, got {labels.dtype} "
                             f"of shape {labels.shape}")
        check_integer("num_classes", self.num_classes, 2)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"labels must be in [0, {self.num_classes}), got "
                             f"{labels.min()}..{labels.max()}")
        self.images, self.labels = images, labels.astype(np.int64)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @classmethod
    def from_dataset(cls, spec: str, per_class: int | None = None, seed: int = 0,
                     **kwargs) -> "SearchTask":
        """The train split of `load_dataset(spec)` (`"digits"`, `"folder:PATH"`,
        `"tfds:NAME"`), `per_class` images of each class if given (picked with `seed`); the test
        split is never read. `kwargs` go to the task (`space=`, `child=`)."""
        from keras_aug.data import dataset_to_numpy, few_shot, load_dataset

        data = load_dataset(spec)
        train = data.train if per_class is None else few_shot(data.train, per_class, seed=seed)
        images, labels = dataset_to_numpy(train)
        return cls(images.astype(np.uint8), labels, data.num_classes, **kwargs)

    def subset(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """`folds` stratified (train, held-out) index splits; each held-out part is 1/folds of
    every class. Raises `ValueError` saying how many images per class are needed.

    Args:
        labels: integer labels.
        folds: number of folds (>= 2).
        seed: shuffling seed.

    Example:
        >>> splits = stratified_folds(np.repeat(np.arange(3), 4), folds=2)
        >>> [(len(a), len(b)) for a, b in splits]
        [(6, 6), (6, 6)]
    """
    from sklearn.model_selection import StratifiedKFold

    check_integer("folds", folds, 2)
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    present = counts[counts > 0]
    if present.min() < folds:
        worst = int(np.flatnonzero(counts == present.min())[0])
        raise ValueError(
            f"{folds} folds need at least {folds} images of every class (one per fold held out), "
            f"but class {worst} has {int(present.min())}; use fewer folds or at least {folds} "
            f"images per class")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [(a, b) for a, b in splitter.split(np.zeros(len(labels)), labels)]
