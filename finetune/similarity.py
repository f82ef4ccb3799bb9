"""How similar is a new dataset to a backbone's pretraining data, without that data?

**BatchNorm method** (backbones with BatchNorm): every BatchNorm layer stores the per-channel mean
and variance of its input over the pretraining data (moving statistics). Run the new images
through the backbone (inference mode), measure the same per-channel statistics at each BatchNorm
input, and compare the two Gaussians per channel with the Bhattacharyya coefficient

    BC = sqrt(2 s1 s2 / (s1^2 + s2^2)) * exp(-(m1 - m2)^2 / (4 (s1^2 + s2^2)))

which is 1 for identical statistics and falls to 0 as they separate. The score is the mean over
channels, then over layers: in [0, 1]; data like the pretraining data keeps activations where the
network expects them, other data shifts them (the mechanism behind AdaBN and BN-based OOD tests).

**Probe method** (fallback for backbones without BatchNorm: VGG, ConvNeXt): a logistic-regression
probe on globally pooled features at each block end, scored by repeated stratified k-fold
cross-validation (k = min(5, smallest class count), `probe_repeats` reshuffled repeats, averaged).
One 3-fold split of 50 images is too coarse: measured on HED-VGG16, digits 5-9 at 10/class, 32x32,
seed 0, it scored block3 and block5 at exactly 0.900 each (a tie), while 5-fold x 4 repeats gives
0.915 vs 0.825 (block5 is clearly worse, like on the other seeds). On data similar to
the pretraining data the deepest block is the most linearly useful; on different data an earlier
block wins (measured for HED-VGG16 on digits: block4 0.94 vs block5 0.83). The score maps the last
block's accuracy relative to the best earlier block onto [0, 1]:

    0.5 + 0.5 * (acc_last - acc_best_earlier) / (max(acc_last, acc_best_earlier) - chance)

0.5 = tie, above = the last block is best (similar), below = an earlier block is better. It needs
labels. Both are documented approximations; examples/finetune_table.py checks that they order
domains sensibly.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from finetune.registry import Backbone, Preprocess, block_output, build_backbone
from keras_aug.core.validation import check_integer

METHODS = ("auto", "batchnorm", "probe")


@dataclass
class SimilarityReport:
    """What `estimate_similarity(..., details=True)` returns.

    Attributes:
        score: the similarity in [0, 1].
        method: `"batchnorm"` or `"probe"`.
        per_layer: the value per BatchNorm layer (batchnorm) or per block (probe).
        images: how many images were used.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> train = few_shot(load_dataset("digits").train, 5)
        >>> report = estimate_similarity("DigitsCNN04", train, input_shape=(32, 32, 3), details=True)
        >>> report.method, report.images
        ('batchnorm', 50)
    """

    score: float
    method: str
    per_layer: dict[str, float] = field(default_factory=dict)
    images: int = 0


def estimate_similarity(
    backbone: str | Backbone,
    dataset: tf.data.Dataset,
    *,
    weights: str | None = "imagenet",
    input_shape: tuple[int, int, int] | None = None,
    method: str = "auto",
    max_images: int = 512,
    batch_size: int = 64,
    sharpness: float = 10.0,
    probe_repeats: int = 4,
    details: bool = False,
) -> float | SimilarityReport:
    """Similarity in [0, 1] of `dataset` to `backbone`'s pretraining data (see module doc).

    Args:
        backbone: a registry name (built with `weights` and `input_shape`) or a built `Backbone`.
        dataset: tf.data of images (0..255, 1 or 3 channels) or (image, label) pairs, batched or not.
        method: "batchnorm", "probe" (needs labels) or "auto" (batchnorm when the backbone has
            BatchNorm layers, else probe).
        max_images: images used (the first ones of `dataset`).
        sharpness: BatchNorm method scale: score = exp(-sharpness * D / D_noise) (module doc).
        probe_repeats: probe method: repeats of the stratified k-fold cross-validation (each
            with another shuffle; the accuracies are averaged). More repeats = a less noisy score
            on tiny datasets, at the cost of more (cheap) logistic-regression fits.
        details: return a `SimilarityReport` (score, method, per-layer/per-block values).

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> train = few_shot(load_dataset("digits").train, 5)
        >>> score = estimate_similarity("DigitsCNN04", train, input_shape=(32, 32, 3))
        >>> 0.0 <= score <= 1.0
        True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_integer("max_images", max_images, 2)
    check_integer("probe_repeats", probe_repeats)
    if isinstance(backbone, str):
        backbone = build_backbone(backbone, weights, input_shape)
    elif not isinstance(backbone, Backbone):
        raise TypeError(f"backbone must be a registry name or a Backbone, got {type(backbone).__name__}")
    images, labels = _take(dataset, max_images)
    bns = _batchnorms(backbone.model)
    if method == "auto":
        method = "batchnorm" if bns else "probe"
    if method == "batchnorm":
        if not bns:
            raise ValueError(f"{backbone.name} has no BatchNormalization layer; use method='probe'")
        report = _batchnorm_similarity(backbone, bns, images, batch_size, sharpness)
    else:
        if labels is None:
            raise ValueError("method='probe' needs labels: pass a dataset of (image, label) pairs")
        report = _probe_similarity(backbone, images, labels, batch_size, probe_repeats)
    report.images = len(images)
    return report if details else report.score


def _take(dataset, max_images):
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"dataset must be a tf.data.Dataset, got {type(dataset).__name__}")
    spec = dataset.element_spec
    has_labels = isinstance(spec, tuple)
    image_spec = spec[0] if has_labels else spec
    if image_spec.shape.rank == 4:
        dataset = dataset.unbatch()
    elif image_spec.shape.rank != 3:
        raise ValueError(f"dataset images must be (H, W, C) or (B, H, W, C), got {image_spec.shape}")
    xs, ys = [], []
    for element in dataset.take(max_images).as_numpy_iterator():
        xs.append(element[0] if has_labels else element)
        if has_labels:
            ys.append(element[1])
    if not xs:
        raise ValueError("dataset is empty")
    return np.stack(xs), (np.asarray(ys) if has_labels else None)


def _batchnorms(model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def _inputs_fn(backbone: Backbone):
    size = backbone.input_shape[:2]
    preprocess = Preprocess(backbone.spec.preprocess)

    def prepare(images):
        x = tf.cast(images, tf.float32)
        if tuple(x.shape[1:3]) != tuple(size):
            x = tf.image.resize(x, size)
        return preprocess(x)

    return prepare


class _ChannelMoments:
    """Streaming per-channel mean/variance over batch and spatial axes."""

    def __init__(self):
        self.n, self.s, self.ss = 0, None, None

    def update(self, x: np.ndarray):
        x = x.reshape(-1, x.shape[-1]).astype(np.float64)
        self.n += len(x)
        s, ss = x.sum(0), (x * x).sum(0)
        self.s = s if self.s is None else self.s + s
        self.ss = ss if self.ss is None else self.ss + ss

    def mean_var(self):
        mean = self.s / self.n
        return mean, np.maximum(self.ss / self.n - mean * mean, 0.0)


def batchnorm_input_moments(model: keras.Model, bns: list, batches, prepare, training=False):
    """Per-channel (mean, var) of each BatchNorm layer's input over `batches`."""
    probe = keras.Model(model.input, [bn.input for bn in bns])
    moments = [_ChannelMoments() for _ in bns]

    @tf.function
    def run(images):
        outputs = probe(prepare(images), training=training)
        return outputs if isinstance(outputs, (list, tuple)) else [outputs]

    for images in batches:
        for m, out in zip(moments, run(images)):
            m.update(out.numpy())
    return [m.mean_var() for m in moments]


def bhattacharyya(m1, v1, m2, v2, eps=1e-5) -> np.ndarray:
    """Bhattacharyya coefficient of two 1-D Gaussians per channel, in [0, 1]."""
    v1, v2 = v1 + eps, v2 + eps
    s1, s2 = np.sqrt(v1), np.sqrt(v2)
    return np.sqrt(2 * s1 * s2 / (v1 + v2)) * np.exp(-((m1 - m2) ** 2) / (4 * (v1 + v2)))


_NOISE_REFERENCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _batchnorm_similarity(backbone, bns, images, batch_size, sharpness) -> SimilarityReport:
    prepare = _inputs_fn(backbone)

    def distances(x):
        batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
        stats = batchnorm_input_moments(backbone.model, bns, batches, prepare)
        out = {}
        for bn, (mean, var) in zip(bns, stats):
            coefficient = bhattacharyya(mean, var, np.asarray(bn.moving_mean, np.float64),
                                        np.asarray(bn.moving_variance, np.float64))
            out[bn.name] = float(np.mean(-np.log(np.maximum(coefficient, 1e-12))))
        return out

    per_layer = distances(images)
    references = _NOISE_REFERENCE.setdefault(backbone.model, {})
    if images.shape[1:] not in references:  # deterministic per backbone and image shape
        noise = np.random.default_rng(0).uniform(0, 255, (64, *images.shape[1:]))
        references[images.shape[1:]] = float(np.mean(list(distances(noise.astype(np.float32)).values())))
    reference = references[images.shape[1:]]
    distance = float(np.mean(list(per_layer.values())))
    score = float(np.exp(-sharpness * distance / max(reference, 1e-12)))
    per_layer["__noise_reference__"] = reference
    return SimilarityReport(float(np.clip(score, 0.0, 1.0)), "batchnorm", per_layer)


def _probe_similarity(backbone, images, labels, batch_size, repeats) -> SimilarityReport:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 3:
        raise ValueError("method='probe' needs at least 2 classes with >= 3 images each, got "
                         f"class counts {dict(zip(classes.tolist(), counts.tolist()))}")
    if len(backbone.blocks) < 3:
        raise ValueError(f"method='probe' needs >= 3 blocks, {backbone.name} has {len(backbone.blocks)}")
    prepare = _inputs_fn(backbone)
    model = backbone.model
    ends = [block_output(model, b.end) for b in backbone.blocks[1:]]
    pooled = keras.Model(model.input, [keras.ops.mean(e, axis=(1, 2)) for e in ends])

    @tf.function
    def run(x):
        return pooled(prepare(x), training=False)

    feats = [[] for _ in ends]
    for i in range(0, len(images), batch_size):
        for f, out in zip(feats, run(images[i:i + batch_size])):
            f.append(out.numpy())
    folds = RepeatedStratifiedKFold(n_splits=int(min(5, counts.min())), n_repeats=repeats,
                                    random_state=0)
    per_block = {}
    for block, f in zip(backbone.blocks[1:], feats):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
        per_block[block.name] = float(np.mean(cross_val_score(probe, np.concatenate(f), labels, cv=folds)))
    accs = list(per_block.values())
    last, earlier = accs[-1], max(accs[:-1])
    chance = 1.0 / len(classes)
    denom = max(last, earlier) - chance
    score = 0.5 if denom <= 0 else 0.5 + 0.5 * (last - earlier) / denom
    return SimilarityReport(float(np.clip(score, 0.0, 1.0)), "probe", per_block)


def adapt_batchnorm(model: keras.Model, train_ds: tf.data.Dataset) -> int:
    """AdaBN: set every BatchNorm's moving statistics in a fine-tune model's trunk to the training
    data's statistics (one pass with batch statistics). Returns the number of layers updated.

    `fine_tune` does this itself for a plan with `bn_policy="adapt"`.

    Args:
        model: a model from `FinetunePlan.build_model()`.
        train_ds: batched tf.data of `(image 0..255, label)`.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> from finetune import plan
        >>> train = few_shot(load_dataset("digits").train, 2).batch(10)
        >>> model = plan("DigitsCNN04", 20, 10, 0.9, input_shape=(32, 32, 3)).build_model()
        >>> adapt_batchnorm(model, train) > 0
        True
    """
    trunk = model.trunk
    bns = _batchnorms(trunk)
    if not bns:
        return 0
    backbone = model.kaug_backbone
    pre = keras.Model(model.input, model.get_layer(backbone.preprocess_layer().name).output)
    batches = (images for images, _ in train_ds)
    flags = [bn.trainable for bn in bns]
    for bn in bns:
        bn.trainable = True  # frozen BN ignores training=True; the pass needs batch statistics
    try:
        stats = batchnorm_input_moments(trunk, bns, batches, lambda x: pre(x, training=False),
                                        training=True)
    finally:
        for bn, flag in zip(bns, flags):
            bn.trainable = flag
    for bn, (mean, var) in zip(bns, stats):
        bn.moving_mean.assign(mean.astype("float32"))
        bn.moving_variance.assign(var.astype("float32"))
    return len(bns)
