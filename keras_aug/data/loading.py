"""`load_dataset(spec)` for "digits", "folder:PATH" and "tfds:NAME"; `few_shot` subsets.

Every loader returns `(image uint8 HxWxC, label int64)` pairs, so the rest of the toolkit has one
input format. Small data is the point of this toolkit, so folders are decoded eagerly: a broken
file fails at load time with its path, not deep inside a training loop.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_aug.core.validation import check_integer

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_DATA_DIR = os.path.join("~", ".cache", "kaug", "tensorflow_datasets")


@dataclass
class LabeledImages:
    """A dataset's splits as tf.data of `(image, label)`, with what a model needs to know.

    `load_dataset` returns one; `.train` and `.test` are the usual splits.

    Attributes:
        splits: split name -> unbatched tf.data of `(uint8 image, int64 label)`.
        num_classes: number of classes.
        class_names: class names in label order (folder names for `folder:` datasets).
        image_shape: `(height, width, channels)` of every image, when known.

    Example:
        >>> data = load_dataset("digits")
        >>> data.num_classes, data.image_shape, sorted(data.splits)
        (10, (32, 32, 1), ['test', 'train'])
    """

    splits: dict[str, tf.data.Dataset]
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    image_shape: tuple[int, int, int] | None = None

    @property
    def train(self) -> tf.data.Dataset:
        return self.splits["train"]

    @property
    def test(self) -> tf.data.Dataset | None:
        return self.splits.get("test")


def load_dataset(
    spec: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> LabeledImages:
    """Load a labelled image dataset.

    Args:
        spec: `"digits"` (embedded, offline; `"digits/rgb32"`, `"digits/gray8"` for other configs),
            `"folder:PATH"` (one subfolder per class, or `train/` and `test/` each holding class
            subfolders) or `"tfds:NAME"` (a tensorflow-datasets name, e.g. `"tfds:cifar10"`).
        data_dir: where TFDS data lives (default `~/.cache/kaug/tensorflow_datasets` for digits,
            TFDS' default for `tfds:` names).
        download: allow TFDS to download a missing `tfds:` dataset (off: fail in a second offline).
        image_size: `(height, width)` to resize folder images to; default the first image's size.
        channels: 1 or 3 for folder images; default that of the first image.

    Example:
        >>> data = load_dataset("digits")
        >>> image, label = next(iter(data.train))   # uint8 (32, 32, 1), int64
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string such as 'digits', got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    if kind == "digits" or kind.startswith("digits/"):
        return _load_tfds(kind, data_dir or DEFAULT_DATA_DIR, download=True)
    if kind == "folder" and rest:
        return _load_folder(rest, image_size=image_size, channels=channels)
    if kind == "tfds" and rest:
        return _load_tfds(rest, data_dir, download=download)
    raise ValueError(
        f"Unknown dataset spec {spec!r}. Expected 'digits', 'folder:PATH' or 'tfds:NAME' "
        "(e.g. 'folder:~/photos', 'tfds:cifar10')."
    )


def _load_tfds(name: str, data_dir: str | None, download: bool) -> LabeledImages:
    import tensorflow_datasets as tfds

    import keras_aug.data.digits  # noqa: F401  (registers the "digits" builder)

    if data_dir is not None:
        data_dir = os.path.expanduser(data_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # tfds raises its own DatasetNotFoundError subclasses
        raise ValueError(f"tensorflow-datasets has no dataset {name!r}: {err}") from None
    if not builder.is_prepared():
        if not download:
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in {builder.data_dir_root!r}. Download it "
                f"once with load_dataset('tfds:{name}', download=True) (CLI: --download), or pass "
                "data_dir= where it was prepared."
            )
        builder.download_and_prepare()
    info = builder.info
    if info.supervised_keys is None:
        raise ValueError(f"TFDS dataset {name!r} has no (image, label) supervised keys.")
    label = info.features[info.supervised_keys[1]]
    splits = {
        split: builder.as_dataset(split=split, as_supervised=True).map(
            lambda x, y: (x, tf.cast(y, tf.int64))
        )
        for split in info.splits
    }
    shape = tuple(info.features[info.supervised_keys[0]].shape)
    return LabeledImages(splits, int(label.num_classes), list(label.names), shape)


def _load_folder(path: str, image_size, channels) -> LabeledImages:
    from PIL import Image, UnidentifiedImageError

    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"folder:{path}: {root} is not a directory.")
    split_dirs = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if "train" not in split_dirs:
        split_dirs = {"train": root}
    class_names = _class_names(split_dirs["train"])
    splits, shape = {}, None
    for split, directory in split_dirs.items():
        images, labels = [], []
        for label, name in enumerate(class_names):
            class_dir = directory / name
            files = sorted(p for p in class_dir.iterdir() if p.is_file()) if class_dir.is_dir() else []
            for file in files:
                if file.suffix.lower() not in IMAGE_EXTENSIONS:
                    raise ValueError(
                        f"{file} is not an image (expected one of {', '.join(IMAGE_EXTENSIONS)}). "
                        "Move it out of the dataset folder."
                    )
                try:
                    with Image.open(file) as im:
                        if channels is None:
                            channels = 1 if im.mode in ("L", "1", "I;16", "I") else 3
                        im = im.convert("L" if channels == 1 else "RGB")
                        if image_size is None:
                            image_size = (im.height, im.width)
                        if (im.height, im.width) != tuple(image_size):
                            im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
                        array = np.asarray(im, dtype=np.uint8).reshape(*image_size, channels)
                except (UnidentifiedImageError, OSError) as err:
                    raise ValueError(f"Cannot decode image {file}: {err}") from None
                images.append(array)
                labels.append(label)
        if not images:
            raise ValueError(f"folder:{path}: no images found in {directory}.")
        shape = images[0].shape
        splits[split] = tf.data.Dataset.from_tensor_slices(
            (np.stack(images), np.asarray(labels, np.int64))
        )
    return LabeledImages(splits, len(class_names), class_names, tuple(shape))


def _class_names(directory: Path) -> list[str]:
    names = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise ValueError(
            f"{directory} has no class subfolders. Expected one subfolder per class, "
            "e.g. PATH/cat/*.jpg and PATH/dog/*.jpg."
        )
    if len(names) < 2:
        raise ValueError(
            f"{directory} has only one class subfolder ({names[0]!r}); a classifier needs at least 2."
        )
    return names


def few_shot(ds: tf.data.Dataset, per_class: int, seed: int = 0) -> tf.data.Dataset:
    """A stratified, deterministic subset: `per_class` examples of every class, chosen by `seed`.

    The result is ordered by class then by the position in `ds`; shuffle it in the pipeline.

    Args:
        ds: unbatched `(image, label)` dataset (small enough to hold in memory).
        per_class: examples kept per class; every class must have that many.
        seed: which examples are picked (the same seed picks the same ones).

    Example:
        >>> train = few_shot(load_dataset("digits").train, per_class=10, seed=0)
        >>> int(train.cardinality())
        100
    """
    images, labels = dataset_to_numpy(ds)
    chosen = few_shot_indices(labels, per_class, seed)
    return tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen]))


def few_shot_indices(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """The positions `few_shot` picks from a dataset with these labels (e.g. to hold out the rest
    as a validation split).

    Args:
        labels: integer labels of the whole dataset, in order.
        per_class: positions picked per class.
        seed: the same seed as `few_shot`'s picks the same positions.

    Example:
        >>> labels = np.array([0, 1, 0, 1, 0, 1])
        >>> picked = few_shot_indices(labels, per_class=2, seed=0)
        >>> len(picked), sorted(labels[picked].tolist())
        (4, [0, 0, 1, 1])
    """
    check_integer("per_class", per_class)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        if len(index) < per_class:
            raise ValueError(
                f"per_class={per_class} but class {int(label)} has only {len(index)} examples; "
                f"use per_class <= {int(min(np.bincount(labels)[np.unique(labels)]))}."
            )
        chosen.append(np.sort(rng.choice(index, per_class, replace=False)))
    return np.concatenate(chosen)


def dataset_to_numpy(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """An unbatched `(image, label)` dataset as `(images, int64 labels)` arrays (small data).

    Args:
        ds: unbatched tf.data of `(image, label)`; it is iterated once.

    Example:
        >>> images, labels = dataset_to_numpy(few_shot(load_dataset("digits").train, 2))
        >>> images.shape, labels.dtype
        ((20, 32, 32, 1), dtype('int64'))
    """
    images, labels = [], []
    for image, label in ds.batch(4096).as_numpy_iterator():  # per-element iteration is ~10x slower
        images.append(image)
        labels.append(label)
    if not images:
        raise ValueError("The dataset is empty.")
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)
