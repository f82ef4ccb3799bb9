"""`SampleGenerator`: labelled synthetic images from a trained generator, as arrays or tf.data.

Loads a training run folder (its EMA generator), a `.weights.h5` file with its config, or a
SavedModel written by `SampleGenerator.export` (`model.export()`: serves `(noise, label)` ->
images in the real data's value range).
"""
from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from gan.models import ConditionalGAN, GANConfig, build_generator
from keras_aug.core.validation import check_integer, check_number

EXPORT_CONFIG = "kaug_gan.json"


class SampleGenerator:
    """Draw labelled images from a class-conditional generator.

    Args:
        generator: a callable `[noise (B, latent_dim), labels (B,) int32] -> images` in
            `config.value_range` (a sampling Keras model, or a SavedModel's `serve`).
        config: the GANConfig it was trained with.

    Example:
        >>> import os, gan
        >>> from keras_aug.data import few_shot, load_dataset
        >>> shipped = os.path.join(os.path.dirname(gan.__file__), "weights", "digits10_seed0.weights.h5")
        >>> sampler = SampleGenerator.load(shipped)          # or a train_gan run folder
        >>> images, labels = sampler.sample(20, seed=0)      # balanced over classes
        >>> images.shape, images.dtype, sorted(set(labels.tolist())) == list(range(10))
        ((20, 32, 32, 1), dtype('uint8'), True)
        >>> train = sampler.mix_with(few_shot(load_dataset("digits").train, 10), ratio=0.5)
    """

    def __init__(self, generator, config: GANConfig):
        if not isinstance(config, GANConfig):
            raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
        self.generator = generator
        self.config = config
        dtype = config.extra.get("image_dtype", "float32")
        self.image_dtype = np.dtype(dtype)

    # construction --------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str, ema: bool = True) -> "SampleGenerator":
        """From a run folder (`train_gan`'s out_dir), a SavedModel folder or a `.weights.h5`
        file that has `<name>.json` (its GANConfig) beside it. `ema=False` (run folders only)
        takes the raw, non-averaged generator of the latest checkpoint."""
        if not ema and not (os.path.isdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb"))):
            raise ValueError(
                f"ema=False needs a train_gan run folder (its checkpoints hold the raw generator), got {path!r}"
            )
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
            return cls.from_saved_model(path)
        if os.path.isdir(path):
            return cls.from_checkpoint(path, ema=ema)
        if os.path.isfile(path) and path.endswith(".weights.h5"):
            config_path = path[: -len(".weights.h5")] + ".json"
            return cls.from_weights(path, _read_config(config_path))
        raise FileNotFoundError(
            f"{path!r} is neither a GAN run folder, a SavedModel folder nor a .weights.h5 file"
        )

    @classmethod
    def from_checkpoint(cls, out_dir: str, ema: bool = True) -> "SampleGenerator":
        """The EMA generator of the latest checkpoint of a `train_gan` run folder, or with
        `ema=False` the raw generator (the weights being trained at that step)."""
        from gan.trainer import CONFIG_FILE, GENERATOR_FILE, latest_checkpoint

        weights = os.path.join(out_dir, GENERATOR_FILE)
        if not os.path.exists(weights):
            raise FileNotFoundError(
                f"{weights} not found: {out_dir!r} has no checkpoint yet (train with train_gan / "
                "`kaug gan train` first)"
            )
        config = _read_config(os.path.join(out_dir, CONFIG_FILE))
        if ema:
            return cls.from_weights(weights, config)
        checkpoint = latest_checkpoint(out_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"ema=False needs {out_dir!r}/checkpoints/ckpt-*.npz, none found")
        generator = build_generator(config, name="generator")
        with np.load(checkpoint) as data:
            stored = sum(1 for k in data.files if k.startswith("generator/"))
            if stored != len(generator.weights):
                raise ValueError(
                    f"checkpoint {checkpoint} has {stored} generator variables, the config builds "
                    f"{len(generator.weights)}"
                )
            for i, variable in enumerate(generator.weights):
                variable.assign(data[f"generator/{i}"])
        return cls(sampling_model(generator, config), config)

    @classmethod
    def from_weights(cls, weights_path: str, config: GANConfig) -> "SampleGenerator":
        generator = build_generator(config, name="ema_generator")
        generator.load_weights(weights_path)
        return cls(sampling_model(generator, config), config)

    @classmethod
    def from_gan(cls, gan: ConditionalGAN) -> "SampleGenerator":
        """The EMA generator of an in-memory GAN (shares its weights)."""
        return cls(sampling_model(gan.ema_generator, gan.config), gan.config)

    @classmethod
    def from_saved_model(cls, path: str) -> "SampleGenerator":
        """A SavedModel written by `export`; its config is read from `kaug_gan.json` inside it."""
        config = _read_config(os.path.join(path, "assets", EXPORT_CONFIG))
        sampler = cls(None, config)
        sampler._saved_model = tf.saved_model.load(path)  # keeps its variables alive
        sampler.generator = sampler._saved_model.serve
        return sampler

    def export(self, path: str) -> str:
        """`model.export(path)` of the sampling model, plus the config inside the SavedModel."""
        if not isinstance(self.generator, keras.Model):
            raise TypeError("export needs a Keras sampling model (this one was loaded from a SavedModel)")
        self.generator.export(path, verbose=False)
        os.makedirs(os.path.join(path, "assets"), exist_ok=True)
        with open(os.path.join(path, "assets", EXPORT_CONFIG), "w") as f:
            json.dump(self.config.to_dict(), f, indent=1)
        return path

    # sampling ------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    def sample(self, n: int, labels=None, seed: int = 0, batch_size: int = 256,
               temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """`n` images in the real data's value range and dtype, and their int64 labels.

        Args:
            n: number of images (> 0).
            labels: one class id for all, or a sequence of `n` class ids; default balanced
                (0, 1, ..., K-1, 0, 1, ...).
            seed: the same seed gives the same images.
            batch_size: generator batch size (does not change the images).
            temperature: scale of the noise (> 0). Below 1 trades diversity for typical
                samples (the truncation trick), above 1 the reverse.
        """
        labels = self._labels(n, labels)
        temperature = _check_temperature(temperature)
        noise = temperature * tf.random.stateless_normal([n, self.config.latent_dim], [int(seed), 0x6A4])
        chunks = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            chunks.append(np.asarray(self._generate(noise[start:stop], tf.constant(labels[start:stop], tf.int32))))
        return self._cast(np.concatenate(chunks)), labels

    def as_dataset(self, n: int | None = None, labels=None, seed: int = 0,
                   batch_size: int = 256, temperature: float = 1.0) -> tf.data.Dataset:
        """Unbatched tf.data of `(image, label)`: `n` samples generated now, or with `n=None`
        an endless stream generated batch by batch (balanced classes, batch i from `(seed, i)`).
        `temperature` scales the noise as in `sample`."""
        if n is not None:
            images, labels = self.sample(n, labels, seed, batch_size, temperature)
            return tf.data.Dataset.from_tensor_slices((images, labels))
        if labels is not None:
            raise ValueError("labels must be None for an endless stream (n=None); it is balanced")
        temperature = _check_temperature(temperature)
        gen_labels = tf.constant(np.arange(batch_size) % self.num_classes, tf.int32)

        def batch(i):
            key = tf.stack([tf.constant(int(seed), tf.int64), 0x6A5 + i])
            noise = temperature * tf.random.stateless_normal([batch_size, self.config.latent_dim], key)
            images = self._to_dtype(self._generate(noise, gen_labels))
            return images, tf.cast(gen_labels, tf.int64)

        return tf.data.Dataset.range(2**62).map(batch).unbatch()

    def _generate(self, noise, labels):
        return self.generator([noise, labels])

    def _to_dtype(self, images: tf.Tensor) -> tf.Tensor:
        if self.image_dtype == np.uint8:
            return tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
        return tf.cast(images, self.image_dtype)

    def mix_with(self, real_ds: tf.data.Dataset, ratio: float = 0.5, seed: int = 0,
                 real_repeats: int = 1, classifier=None, oversample: int = 3,
                 temperature: float = 1.0) -> tf.data.Dataset:
        """The real `(image, label)` examples plus synthetic ones so that a fraction `ratio` of
        the result is synthetic (balanced over classes), shuffled once with `seed`. Finite, so
        it caches and batches like the real set (e.g. in `keras_aug.data.make_pipeline`).

        Args:
            real_ds: unbatched `(image, label)` real training set.
            ratio: synthetic fraction of the result, in [0, 1).
            seed: seed of the synthetic images and of the shuffle.
            real_repeats: the real set appears this many times, and as many times more distinct
                synthetic images are drawn: the synthetic fraction of every batch stays `ratio`
                but the classifier sees `real_repeats` x more different generated images.
            classifier: optional confidence filter (a known technique for generated training
                data, e.g. He et al. 2023 filter with CLIP): a Keras model or callable that maps
                a float32 batch in the real data's value range to class probabilities or logits,
                typically a classifier trained on the real images alone. `oversample` x more
                synthetic images are drawn and, per class, the ones it gives the highest
                probability of their requested class are kept.
            oversample: candidates drawn per kept image when filtering (>= 1).
            temperature: noise scale, as in `sample`.

        Example:
            >>> teacher = train_on(real)                      # any classifier of the real images
            >>> mixed = sampler.mix_with(real, ratio=0.5, real_repeats=10, classifier=teacher)
        """
        check_number("ratio (the synthetic fraction)", ratio, 0, 1, high_open=True)
        check_integer("real_repeats", real_repeats)
        check_integer("oversample", oversample)
        if classifier is not None and not callable(classifier):
            raise TypeError(f"classifier must be a Keras model or callable, got {type(classifier).__name__}")
        from gan.trainer import dataset_arrays

        images, labels = dataset_arrays(real_ds)
        if images.ndim == 3:
            images = images[..., None]
        if tuple(images.shape[1:]) != tuple(self.config.image_shape):
            raise ValueError(
                f"real_ds images have shape {tuple(images.shape[1:])}, the generator makes "
                f"{tuple(self.config.image_shape)}"
            )
        images = np.concatenate([images] * real_repeats)
        labels = np.concatenate([labels] * real_repeats)
        n_synthetic = int(round(len(images) * ratio / (1.0 - ratio)))
        if n_synthetic:
            if classifier is None:
                synthetic, synthetic_labels = self.sample(n_synthetic, seed=seed, temperature=temperature)
            else:
                synthetic, synthetic_labels = self._confident(n_synthetic, classifier, oversample, seed,
                                                              temperature)
            images = np.concatenate([images, synthetic.astype(images.dtype)])
            labels = np.concatenate([labels, synthetic_labels])
        order = np.random.default_rng(seed).permutation(len(images))
        return tf.data.Dataset.from_tensor_slices((images[order], labels[order]))

    def _confident(self, n: int, classifier, oversample: int, seed: int, temperature: float):
        """`n` balanced samples: the most confidently classified of `oversample * n` candidates."""
        candidates, labels = self.sample(n * oversample, seed=seed, temperature=temperature)
        scores = []
        for start in range(0, len(candidates), 256):
            batch = tf.constant(candidates[start:start + 256], tf.float32)
            scores.append(np.asarray(classifier(batch, training=False) if isinstance(classifier, keras.Model)
                                     else classifier(batch), np.float32))
        scores = np.concatenate(scores)
        if scores.shape != (len(labels), self.num_classes):
            raise ValueError(
                f"classifier must return ({len(labels)}, {self.num_classes}) class scores, got {scores.shape}"
            )
        is_probability = scores.min() >= 0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
        probabilities = scores if is_probability else np.asarray(tf.nn.softmax(scores))
        confidence = probabilities[np.arange(len(labels)), labels]
        wanted = self._labels(n, None)  # the balanced label sequence `sample` would give
        keep = []
        for k in range(self.num_classes):
            count = int(np.sum(wanted == k))
            index = np.flatnonzero(labels == k)
            keep.append(index[np.argsort(-confidence[index], kind="stable")[:count]])
        keep = np.sort(np.concatenate(keep))
        return candidates[keep], labels[keep]

    # helpers -------------------------------------------------------------------------------
    def _labels(self, n, labels) -> np.ndarray:
        check_integer("n", n)
        k = self.num_classes
        if labels is None:
            return (np.arange(n) % k).astype(np.int64)
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full([n], labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"labels must be one class id or {n} integer class ids, got shape {labels.shape} "
                f"dtype {labels.dtype}"
            )
        bad = labels[(labels < 0) | (labels >= k)]
        if len(bad):
            raise ValueError(f"unknown label {int(bad[0])}: the generator knows classes 0..{k - 1}")
        return labels.astype(np.int64)

    def _cast(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self._to_dtype(tf.constant(images)))


def sampling_model(generator: keras.Model, config: GANConfig) -> keras.Model:
    """(noise, label) -> images in `config.value_range` (the model that gets exported)."""
    low, high = config.value_range
    noise = keras.Input((config.latent_dim,), name="noise")
    label = keras.Input((), dtype="int32", name="label")
    images = generator([noise, label])
    images = keras.layers.Rescaling((high - low) / 2.0, offset=(high + low) / 2.0, name="to_value_range")(images)
    return keras.Model([noise, label], images, name="sampler")


def _check_temperature(temperature) -> float:
    return check_number("temperature (the noise scale, 1 = as trained)", temperature, low=0,
                        low_open=True)


def _read_config(path: str) -> GANConfig:
    if not os.path.exists(path):
        raise FileNotFoundError(f"GAN config {path} not found")
    with open(path) as f:
        return GANConfig.from_dict(json.load(f))
