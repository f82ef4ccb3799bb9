"""`load_dataset(spec)` for "digits", "folder:PATH" and "tfds:NAME"; `few_shot` subsets.

Every loader returns `(image uint8 HxWxC, label int64)` pairs, so the rest of the toolkit has one
input format. Small data is the point of this toolkit, so folders are decoded eagerly, at load
time: a file that is not an image or cannot be read is skipped there and named in one warning,
not met deep inside a training loop.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_aug.core.validation import check_integer
from keras_aug.data.images import (IMAGE_EXTENSIONS, check_channels, check_image_size, decode_file,
                                   read_header, resize_images)

MAX_DEFAULT_SIDE = 512  # the default folder image size is capped to this longer side (memory)
SYSTEM_FILES = ("Thumbs.db", "desktop.ini")  # skipped silently, like dotfiles (.DS_Store)
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
        skipped: for `folder:` datasets, each file that was skipped, as `"PATH: why"` (not an
            image file, unreadable, a nested folder); hidden files are left out silently.
        folder: for `folder:` datasets, the directory whose subfolders are the training classes.

    Example:
        >>> data = load_dataset("digits")
        >>> data.num_classes, data.image_shape, sorted(data.splits)
        (10, (32, 32, 1), ['test', 'train'])
    """

    splits: dict[str, tf.data.Dataset]
    num_classes: int
    class_names: list[str] = field(default_factory=list)
    image_shape: tuple[int, int, int] | None = None
    skipped: list[str] = field(default_factory=list)
    folder: str | None = None

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
        image_size: `(height, width)` every folder image is resized to (antialiased, by
            `resize_images`). Default: the median height and width of the dataset's images,
            scaled down (aspect kept) so the longer side is at most 512.
        channels: 1 or 3 for folder images. Default: 3 if any image is colour (RGB, RGBA,
            CMYK, a palette with colours), else 1; decided from the headers, before decoding.

    Folder files that are not images (by extension) or cannot be read are skipped, all named in
    one `SkippedFilesWarning` and in the result's `skipped`; hidden files (`.DS_Store`, other
    dotfiles, `Thumbs.db`) are skipped silently. A class folder left without images raises.

    Example:
        >>> data = load_dataset("digits")
        >>> image, label = next(iter(data.train))   # uint8 (32, 32, 1), int64
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string such as 'digits', got {type(spec).__name__}")
    kind, _, rest = spec.partition(":")
    if kind != "folder" and (image_size is not None or channels is not None):
        raise ValueError(f"image_size= and channels= apply to 'folder:PATH' datasets only, got spec {spec!r}; "
                         "resize other datasets in the pipeline.")
    if image_size is not None:
        image_size = check_image_size(image_size)
    if channels is not None:
        channels = check_channels(channels)
    if kind == "digits" or kind.startswith("digits/"):
        return _load_tfds(kind, data_dir or DEFAULT_DATA_DIR, download=True)
    if kind == "folder" and rest:
        if data_dir is not None or download:
            raise ValueError("data_dir= and download= apply to TFDS datasets, not to 'folder:PATH'.")
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


class SkippedFilesWarning(UserWarning):
    """Files of a `folder:` dataset that were skipped (not images, or unreadable), each with why.

    `load_dataset` warns once per dataset; the same list is in `LabeledImages.skipped`.

    Args:
        message: `folder:PATH: skipped N file(s):`, then a line `FILE: why` per file.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("error", SkippedFilesWarning)  # strict: refuse any skip
        ...     data = load_dataset("digits")
    """


def _load_folder(path: str, image_size, channels) -> LabeledImages:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"folder:{path}: {root} is not a directory.")
    split_dirs = {s: root / s for s in ("train", "test") if (root / s).is_dir()}
    if "train" not in split_dirs:
        split_dirs = {"train": root}
    class_names = _class_names(split_dirs["train"])
    if "test" in split_dirs:
        _check_test_classes(split_dirs["test"], class_names)
    skipped: list[str] = []
    found = {split: _scan_split(directory, class_names, skipped) for split, directory in split_dirs.items()}
    headers = [header for entries in found.values() for _, _, header in entries]
    if channels is None:
        channels = 3 if any(header.colour for header in headers) else 1
    if image_size is None and headers:
        image_size = default_image_size(headers)
    splits = {}
    for split, entries in found.items():
        images, labels = [], []
        for file, label, header in entries:
            try:
                image = decode_file(file, header, channels)
            except (OSError, ValueError, tf.errors.InvalidArgumentError) as err:
                skipped.append(f"{file}: cannot decode ({_error_text(err)})")
                continue
            images.append(resize_images(image, image_size).numpy())
            labels.append(label)
        splits[split] = (images, np.asarray(labels, np.int64))
    if skipped:
        warnings.warn(f"folder:{path}: skipped {len(skipped)} file(s):\n  " + "\n  ".join(skipped),
                      SkippedFilesWarning, stacklevel=3)
    see_warning = " (the skipped files are listed in the warning above)" if skipped else ""
    for split, directory in split_dirs.items():
        counts = np.bincount(splits[split][1], minlength=len(class_names))
        for name, count in zip(class_names, counts):
            if count == 0 and (directory / name).is_dir():
                raise ValueError(f"folder:{path}: no images found for class {name!r} in "
                                 f"{directory / name}{see_warning}.")
        if not counts.any():
            raise ValueError(f"folder:{path}: no images found in {directory}{see_warning}.")
    datasets = {split: tf.data.Dataset.from_tensor_slices((np.stack(images), labels))
                for split, (images, labels) in splits.items()}
    return LabeledImages(datasets, len(class_names), class_names, (*image_size, channels),
                         skipped=skipped, folder=str(split_dirs["train"]))


def default_image_size(headers) -> tuple[int, int]:
    """The median height and width, scaled down (aspect kept) to at most `MAX_DEFAULT_SIDE` pixels.

    The median ignores a few odd-sized outliers; the cap keeps a folder of camera photos in memory.
    """
    height = float(np.median([header.height for header in headers]))
    width = float(np.median([header.width for header in headers]))
    scale = min(1.0, MAX_DEFAULT_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _scan_split(directory: Path, class_names: list[str], skipped: list[str]) -> list:
    """`(file, label, header)` of the readable images of each class folder; the rest go to `skipped`."""
    entries = []
    for label, name in enumerate(class_names):
        class_dir = directory / name
        if not class_dir.is_dir():
            continue  # a test split may lack a class
        for file in sorted(class_dir.iterdir()):
            if file.name.startswith(".") or file.name in SYSTEM_FILES:
                continue
            if file.is_dir():
                skipped.append(f"{file}: a folder (class folders are not searched recursively)")
            elif file.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(f"{file}: not an image file (expected {', '.join(IMAGE_EXTENSIONS)})")
            else:
                try:
                    entries.append((file, label, read_header(file)))
                except (OSError, ValueError, SyntaxError) as err:  # Pillow's ways to refuse a file
                    skipped.append(f"{file}: cannot read ({_error_text(err)})")
    return entries


def _error_text(err: Exception) -> str:
    message = err.message if isinstance(err, tf.errors.OpError) else str(err)
    return re.sub(r"\{\{.*?\}\}\s*", "", message).strip() or type(err).__name__


def _check_test_classes(directory: Path, class_names: list[str]) -> None:
    extra = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and p.name not in class_names)
    if extra:
        raise ValueError(f"{directory} has class folders that train/ lacks: {extra}; the model "
                         f"only knows the classes of train/ ({class_names}).")


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


def few_shot(
    ds: tf.data.Dataset,
    per_class: int,
    seed: int = 0,
    *,
    class_names: Sequence[str] | None = None,
    folder: str | None = None,
) -> tf.data.Dataset:
    """A stratified, deterministic subset: `per_class` examples of every class, chosen by `seed`.

    The result is ordered by class then by the position in `ds`; shuffle it in the pipeline.

    Args:
        ds: unbatched `(image, label)` dataset (small enough to hold in memory).
        per_class: examples kept per class; every class must have that many.
        seed: which examples are picked (the same seed picks the same ones).
        class_names: names in label order (`LabeledImages.class_names`): a class too small is
            named in the error, and a class with no example at all is caught.
        folder: the folder holding one subfolder per class (`LabeledImages.folder`), so the
            error says where to add images.

    Example:
        >>> train = few_shot(load_dataset("digits").train, per_class=10, seed=0)
        >>> int(train.cardinality())
        100
    """
    images, labels = dataset_to_numpy(ds)
    chosen = few_shot_indices(labels, per_class, seed, class_names=class_names, folder=folder)
    return tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen]))


def few_shot_indices(
    labels: np.ndarray,
    per_class: int,
    seed: int = 0,
    *,
    class_names: Sequence[str] | None = None,
    folder: str | None = None,
) -> np.ndarray:
    """The positions `few_shot` picks from a dataset with these labels (e.g. to hold out the rest
    as a validation split).

    Args:
        labels: integer labels of the whole dataset, in order.
        per_class: positions picked per class.
        seed: the same seed as `few_shot`'s picks the same positions.
        class_names: names in label order, as in `few_shot`.
        folder: the folder of the class subfolders, as in `few_shot`.

    Example:
        >>> labels = np.array([0, 1, 0, 1, 0, 1])
        >>> picked = few_shot_indices(labels, per_class=2, seed=0)
        >>> len(picked), sorted(labels[picked].tolist())
        (4, [0, 0, 1, 1])
        >>> few_shot_indices(labels, 4, class_names=["cat", "dog"], folder="photos")
        Traceback (most recent call last):
        ValueError: per_class=4 but class 'cat' has only 3 examples; use per_class <= 3 or add images to photos/cat.
    """
    check_integer("per_class", per_class)
    labels = np.asarray(labels)
    if class_names is None:
        classes, names = np.unique(labels), None
    else:
        names = list(class_names)
        if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
            raise ValueError(f"labels must be in [0, {len(names)}) for the {len(names)} class_names, "
                             f"got labels from {labels.min()} to {labels.max()}")
        classes = np.arange(len(names))
    counts = np.bincount(labels, minlength=len(classes))[classes]
    if counts.min(initial=per_class) < per_class:
        smallest = int(np.argmin(counts))
        name = repr(names[smallest]) if names else str(int(classes[smallest]))
        advice = [f"use per_class <= {counts[smallest]}"] if counts[smallest] else []
        if folder and names:
            advice.append(f"add images to {os.path.join(folder, names[smallest])}")
        raise ValueError(f"per_class={per_class} but class {name} has only {counts[smallest]} examples"
                         + ("; " + " or ".join(advice) if advice else "") + ".")
    rng = np.random.default_rng(seed)
    return np.concatenate([np.sort(rng.choice(np.flatnonzero(labels == label), per_class, replace=False))
                           for label in classes])


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
