import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from keras_aug.data import dataset_to_numpy, few_shot, few_shot_indices, load_dataset, make_pipeline
from keras_aug.data.digits import TRAIN_SIZE, digits_arrays


def test_tfds_builder_offline(tmp_path):
    import keras_aug.data  # noqa: F401  registers the builder

    ds, info = tfds.load("digits/rgb32", data_dir=str(tmp_path), split="test", with_info=True,
                         as_supervised=True)
    assert info.splits["train"].num_examples == TRAIN_SIZE
    assert info.splits["test"].num_examples == 1797 - TRAIN_SIZE
    image, label = next(iter(ds))
    assert image.shape == (32, 32, 3) and image.dtype == tf.uint8
    assert 0 <= int(label) < 10


def test_load_digits_splits_and_content(digits):
    assert digits.num_classes == 10 and digits.image_shape == (32, 32, 1)
    images = np.stack([x for x, _ in digits.test.as_numpy_iterator()])
    labels = np.asarray([y for _, y in digits.test.as_numpy_iterator()])
    assert images.shape == (797, 32, 32, 1) and images.dtype == np.uint8
    assert images.max() == 255 and labels.dtype == np.int64
    # The test split is exactly scikit-learn's last 797 digits (TFDS only reorders them).
    ref_images, ref_labels = digits_arrays(32, 1)
    assert sorted(map(bytes, images)) == sorted(map(bytes, ref_images[TRAIN_SIZE:]))
    assert np.array_equal(np.bincount(labels), np.bincount(ref_labels[TRAIN_SIZE:]))


def test_few_shot_stratified_and_deterministic(digits):
    a = list(few_shot(digits.train, per_class=5, seed=3).as_numpy_iterator())
    b = list(few_shot(digits.train, per_class=5, seed=3).as_numpy_iterator())
    c = list(few_shot(digits.train, per_class=5, seed=4).as_numpy_iterator())
    labels = np.asarray([y for _, y in a])
    assert np.array_equal(np.bincount(labels), np.full(10, 5))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_few_shot_indices_are_what_few_shot_picks(digits):
    images, labels = dataset_to_numpy(digits.train)
    chosen = few_shot_indices(labels, 4, seed=2)
    subset_images, subset_labels = dataset_to_numpy(few_shot(digits.train, 4, seed=2))
    np.testing.assert_array_equal(images[chosen], subset_images)
    np.testing.assert_array_equal(labels[chosen], subset_labels)
    assert len(np.unique(chosen)) == 40
    with pytest.raises(ValueError, match="per_class must be an integer >= 1, got 0"):
        few_shot_indices(labels, 0)


def test_few_shot_too_many_per_class(digits):
    with pytest.raises(ValueError, match=r"per_class=500 but class \d has only \d+ examples"):
        few_shot(digits.train, per_class=500)
    with pytest.raises(ValueError, match="per_class must be an integer >= 1"):
        few_shot(digits.train, per_class=0)


def test_pipeline_shapes_and_dtypes(digits):
    ds = make_pipeline(few_shot(digits.train, 3), batch_size=8, seed=0)
    x, y = next(iter(ds))
    assert x.shape == (8, 32, 32, 1) and x.dtype == tf.float32 and y.dtype == tf.int64
    assert sum(int(b[0].shape[0]) for b in ds) == 30
    raw = make_pipeline(few_shot(digits.train, 3), batch_size=8, dtype=None, shuffle=False)
    assert next(iter(raw))[0].dtype == tf.uint8
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        make_pipeline(digits.train, batch_size=0)


def test_pipeline_applies_images_only_callables_and_label_layers(digits):
    from keras_aug.layers import RandomFlip

    small = few_shot(digits.train, 2)
    x0 = next(iter(make_pipeline(small, batch_size=20, shuffle=False)))[0]
    x1, _ = next(iter(make_pipeline(small, batch_size=20, shuffle=False, augment=lambda x: -x)))
    assert np.allclose(x1, -x0)
    x2, y2 = next(iter(make_pipeline(small, batch_size=20, shuffle=False,
                                     augment=RandomFlip("horizontal", seed=1))))
    assert x2.shape == x0.shape and y2.shape == (20,)


def test_reproducible_pipeline_gives_every_batch_the_same_draws_in_every_run(digits):
    from keras_aug.layers import RandomAffine

    def epoch():
        ds = make_pipeline(few_shot(digits.train, 10), batch_size=5, seed=0, reproducible=True,
                           augment=RandomAffine(rotation=0.2, translate_x=0.2, seed=3))
        return np.concatenate([x.numpy() for x, _ in ds])

    assert np.array_equal(epoch(), epoch())


def _write_folder(root, classes=("cat", "dog"), per_class=3, size=(12, 10)):
    for c in classes:
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((*size, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")


def test_folder_dataset(tmp_path):
    _write_folder(tmp_path)
    data = load_dataset(f"folder:{tmp_path}")
    assert data.num_classes == 2 and data.class_names == ["cat", "dog"]
    assert data.image_shape == (12, 10, 3) and data.test is None
    labels = [int(y) for _, y in data.train.as_numpy_iterator()]
    assert labels == [0, 0, 0, 1, 1, 1]
    resized = load_dataset(f"folder:{tmp_path}", image_size=(8, 8), channels=1)
    assert resized.image_shape == (8, 8, 1)


def test_folder_with_train_test_splits(tmp_path):
    _write_folder(tmp_path / "train")
    _write_folder(tmp_path / "test", per_class=1)
    data = load_dataset(f"folder:{tmp_path}")
    assert sum(1 for _ in data.train) == 6 and sum(1 for _ in data.test) == 2


def test_folder_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="has no class subfolders"):
        load_dataset(f"folder:{tmp_path}")
    _write_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(ValueError, match="only one class subfolder"):
        load_dataset(f"folder:{tmp_path / 'one'}")
    _write_folder(tmp_path / "bad")  # files that are not images are skipped (tests/test_folder.py)
    (tmp_path / "bad" / "cat" / "notes.txt").write_text("hello")
    with pytest.warns(UserWarning, match=r"notes.txt: not an image file"):
        load_dataset(f"folder:{tmp_path / 'bad'}")
    _write_folder(tmp_path / "broken")
    (tmp_path / "broken" / "dog" / "x.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"x.png: cannot read"):
        load_dataset(f"folder:{tmp_path / 'broken'}")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        load_dataset(f"folder:{tmp_path / 'empty'}")


def test_bad_specs(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset spec 'mnist'.*'digits', 'folder:PATH' or 'tfds:NAME'"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match="spec must be a string"):
        load_dataset(3)
    with pytest.raises(ValueError, match=r"'mnist' is not prepared .*download=True"):
        load_dataset("tfds:mnist", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="tensorflow-datasets has no dataset 'no_such_dataset_xyz'"):
        load_dataset("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
