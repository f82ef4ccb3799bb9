"""`load_dataset("folder:PATH")` on folders as users have them: mixed sizes and formats, grayscale,
stray and corrupt files; `few_shot` naming the class that is too small; `resize_images`."""
import warnings

import numpy as np
import pytest
from PIL import Image

from keras_aug.data import SkippedFilesWarning, few_shot, few_shot_indices, load_dataset, resize_images

RNG = np.random.default_rng(0)


def rgb(height, width):
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def gray(height, width):
    return RNG.integers(0, 256, (height, width), dtype=np.uint8)


@pytest.fixture
def mixed(tmp_path):
    """cat: RGB jpg and png of other sizes, RGBA png, junk; dog: gray png, palette gif, 16-bit png."""
    cat, dog = tmp_path / "cat", tmp_path / "dog"
    cat.mkdir(), dog.mkdir()
    Image.fromarray(rgb(30, 40)).save(cat / "a.jpg", quality=90)
    Image.fromarray(rgb(20, 24)).save(cat / "b.png")
    rgba = np.concatenate([rgb(20, 24), np.full((20, 24, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(cat / "c.png")
    (cat / "corrupt.jpg").write_bytes(RNG.integers(0, 256, 500, dtype=np.uint8).tobytes())
    (cat / "README.txt").write_text("photos of my cat")
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    Image.fromarray(gray(20, 24)).save(dog / "d.png")
    Image.fromarray(rgb(16, 24)).convert("P", palette=Image.ADAPTIVE).save(dog / "e.gif")
    Image.fromarray((gray(20, 24).astype(np.uint16) * 257)).save(dog / "f.png")  # 16-bit "I;16"
    return tmp_path


def test_mixed_folder_loads_skips_and_names_what_it_skipped(mixed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_dataset(f"folder:{mixed}")
    ours = [w for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    message = str(ours[0].message)
    assert "corrupt.jpg: cannot read" in message and "README.txt: not an image file" in message
    assert ".DS_Store" not in message
    assert sorted(s.split(": ")[0] for s in data.skipped) == [str(mixed / "cat" / "README.txt"),
                                                               str(mixed / "cat" / "corrupt.jpg")]
    assert data.class_names == ["cat", "dog"] and data.folder == str(mixed)
    # Colour because some images are (dog's are gray or palette); the median height and width.
    assert data.image_shape == (20, 24, 3)
    images, labels = zip(*data.train.as_numpy_iterator())
    assert list(labels) == [0, 0, 0, 1, 1, 1]
    assert all(x.shape == (20, 24, 3) and x.dtype == np.uint8 for x in images)
    b, c, d, _, f = (np.asarray(Image.open(mixed / p)) for p in ("cat/b.png", "cat/c.png", "dog/d.png",
                                                                 "dog/e.gif", "dog/f.png"))
    np.testing.assert_array_equal(images[1], b)  # already at the chosen size: exact
    np.testing.assert_array_equal(images[2], c[..., :3])  # alpha dropped
    np.testing.assert_array_equal(images[3], np.repeat(d[..., None], 3, -1))  # gray replicated
    np.testing.assert_array_equal(images[5][..., 0], (f >> 8).astype(np.uint8))  # 16-bit: high byte
    assert images[4].std() > 20  # the palette gif kept its colours (resized from 16x24)
    assert np.abs(images[4][..., 0].astype(int) - images[4][..., 1]).max() > 0


def test_explicit_channels_and_size_win(mixed):
    with pytest.warns(SkippedFilesWarning):
        data = load_dataset(f"folder:{mixed}", image_size=(8, 10), channels=1)
    images = np.stack([x for x, _ in data.train.as_numpy_iterator()])
    assert data.image_shape == (8, 10, 1) and images.shape == (6, 8, 10, 1)


def test_all_gray_folder_has_one_channel(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(gray(12, 12)).save(tmp_path / name / "x.png")
        Image.fromarray(gray(12, 12)).convert("P").save(tmp_path / name / "y.gif")  # gray palette
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to skip, nothing to warn about
        data = load_dataset(f"folder:{tmp_path}")
    assert data.image_shape == (12, 12, 1) and data.skipped == []


def test_default_size_is_the_median_capped_at_512(tmp_path):
    for name, sizes in (("a", [(10, 20), (10, 20)]), ("b", [(10, 20), (100, 90)])):
        (tmp_path / "small" / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            Image.fromarray(gray(*size)).save(tmp_path / "small" / name / f"{i}.png")
        (tmp_path / "large" / name).mkdir(parents=True)
        Image.fromarray(np.zeros((1200, 600), np.uint8)).save(tmp_path / "large" / name / "0.png")
    assert load_dataset(f"folder:{tmp_path / 'small'}").image_shape == (10, 20, 1)  # outlier ignored
    assert load_dataset(f"folder:{tmp_path / 'large'}").image_shape == (512, 256, 1)  # aspect kept


def test_class_left_without_images_raises_naming_it(mixed):
    for file in (mixed / "dog").iterdir():
        file.unlink()
    (mixed / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.warns(SkippedFilesWarning, match="broken.png"):
        with pytest.raises(ValueError, match=r"no images found for class 'dog' in .*dog \(the skipped"):
            load_dataset(f"folder:{mixed}")


def test_test_split_classes_must_exist_in_train(tmp_path):
    for split, classes in (("train", ("cat", "dog")), ("test", ("cat", "dog", "owl"))):
        for name in classes:
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(rgb(8, 8)).save(tmp_path / split / name / "0.png")
    with pytest.raises(ValueError, match=r"class folders that train/ lacks: \['owl'\]"):
        load_dataset(f"folder:{tmp_path}")


def test_arguments_a_dataset_does_not_use_raise(tmp_path):
    with pytest.raises(ValueError, match="apply to 'folder:PATH' datasets only"):
        load_dataset("digits", image_size=(16, 16))
    with pytest.raises(ValueError, match="channels must be 1 .* or 3 .*, got 2"):
        load_dataset(f"folder:{tmp_path}", channels=2)
    with pytest.raises(ValueError, match=r"image_size must be \(height, width\).*got \(0, 8\)"):
        load_dataset(f"folder:{tmp_path}", image_size=(0, 8))
    with pytest.raises(ValueError, match="data_dir= and download= apply to TFDS"):
        load_dataset(f"folder:{tmp_path}", download=True)


def test_few_shot_names_the_class_too_small(mixed):
    with pytest.warns(SkippedFilesWarning):
        data = load_dataset(f"folder:{mixed}")
    with pytest.raises(ValueError, match=rf"per_class=5 but class 'cat' has only 3 examples; use per_class "
                                         rf"<= 3 or add images to {mixed / 'cat'}\."):
        few_shot(data.train, 5, class_names=data.class_names, folder=data.folder)
    with pytest.raises(ValueError, match=r"class 'cat' has only 3 examples; use per_class <= 3\.$"):
        few_shot(data.train, 5, class_names=data.class_names)
    assert int(few_shot(data.train, 3, class_names=data.class_names).cardinality()) == 6


def test_few_shot_indices_with_class_names_sees_missing_and_foreign_labels():
    labels = np.array([0, 0, 2, 2])
    with pytest.raises(ValueError, match="class 'b' has only 0 examples.$"):
        few_shot_indices(labels, 1, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\) for the 2 class_names, got labels from 0 to 2"):
        few_shot_indices(labels, 1, class_names=["a", "b"])
    every = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])  # all present: the same picks as without names
    np.testing.assert_array_equal(few_shot_indices(every, 2, seed=4, class_names=["a", "b", "c"]),
                                  few_shot_indices(every, 2, seed=4))


def test_resize_images_antialiases_and_keeps_dtype():
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None]
    small = resize_images(board, (8, 8)).numpy()
    assert small.dtype == np.uint8 and small.shape == (8, 8, 1)
    assert np.abs(small.astype(int) - 128).max() <= 1  # every output pixel averages its block
    np.testing.assert_array_equal(resize_images(board[None], (64, 64)).numpy()[0], board)  # identity
    with pytest.raises(ValueError, match="image_size must be"):
        resize_images(board, "8x8")
