"""AugMix's Jensen-Shannon consistency training: the loss and the clean + 2 augmented views."""
from __future__ import annotations

import keras
import tensorflow as tf

from keras_aug.core.labels import one_hot
from keras_aug.core.validation import check_integer, check_number


@keras.saving.register_keras_serializable(package="keras_aug")
class JSDConsistencyLoss(keras.losses.Loss):
    """Cross-entropy on the clean split + `alpha` × Jensen-Shannon divergence between the splits
    (timm's `JsdCrossEntropy`, Hendrycks et al. 2020).

    `y_pred` stacks `num_splits` equal parts along the batch: `[clean; aug1; aug2]` as produced
    by `AugMixViews`. The cross-entropy (with `label_smoothing`) uses the clean part's labels
    (the first third of `y_true`, integer or one-hot); the consistency term is
    `mean_i KL(p_i || M)` with `M` the mean of the splits' softmax probabilities.

    Args:
        num_splits: number of views stacked in the batch (clean + augmented).
        alpha: weight of the consistency term (12 in the paper and timm).
        label_smoothing: smoothing of the clean cross-entropy (timm's default 0.1).
        from_logits: whether `y_pred` are logits (True) or probabilities.

    Example:
        >>> from keras_aug.data import few_shot, load_dataset, make_pipeline
        >>> views = keras_aug.policies.AugMixViews(keras_aug.layers.AugMix(seed=0, jit_compile=False))
        >>> train = few_shot(load_dataset("digits/rgb32").train, 2)
        >>> ds = make_pipeline(train, augment=views, batch_size=8)
        >>> model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])
        >>> model.compile("adam", loss=keras_aug.policies.JSDConsistencyLoss())
        >>> history = model.fit(ds, epochs=1, verbose=0)
    """

    def __init__(self, num_splits: int = 3, alpha: float = 12.0, label_smoothing: float = 0.1,
                 from_logits: bool = True, name: str = "jsd_consistency", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_splits = check_integer("num_splits", num_splits, 2)
        self.alpha = check_number("alpha", alpha, low=0)
        self.label_smoothing = check_number("label_smoothing", label_smoothing, 0, 1, high_open=True)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = tf.convert_to_tensor(y_pred)
        num_classes = y_pred.shape[-1]
        n = tf.shape(y_pred)[0] // self.num_splits
        splits = [y_pred[i * n:(i + 1) * n] for i in range(self.num_splits)]
        labels = y_true[:n]
        ce = keras.losses.categorical_crossentropy(
            one_hot(labels, num_classes), splits[0], from_logits=self.from_logits,
            label_smoothing=self.label_smoothing)
        probs = [tf.nn.softmax(s) if self.from_logits else tf.cast(s, tf.float32) for s in splits]
        log_mixture = tf.math.log(tf.clip_by_value(tf.add_n(probs) / len(probs), 1e-7, 1.0))
        batch = tf.cast(n, tf.float32)
        kl = [tf.reduce_sum(tf.math.xlogy(p, p) - p * log_mixture) / batch for p in probs]
        return tf.reduce_mean(ce) + self.alpha * tf.add_n(kl) / len(kl)

    def get_config(self):
        return {**super().get_config(), "num_splits": self.num_splits, "alpha": self.alpha,
                "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


class AugMixViews:
    """Batch -> `[clean; augment(clean); augment(clean)]` with labels repeated, for
    `JSDConsistencyLoss`. Use it as `make_pipeline(..., augment=AugMixViews(AugMix(...)))`.

    Args:
        augment: the augmentation giving each extra view (an `AugMix` layer; each call draws
            fresh per-sample chains).
        num_views: augmented views per clean batch (2, as in the paper).

    Example:
        >>> views = AugMixViews(keras_aug.layers.AugMix(seed=0, jit_compile=False))
        >>> images, labels = views(tf.random.uniform([4, 32, 32, 3], 0, 255), tf.range(4))
        >>> images.shape, labels.shape
        (TensorShape([12, 32, 32, 3]), TensorShape([12]))
    """

    takes_labels = True

    def __init__(self, augment, num_views: int = 2):
        self.augment, self.num_views = augment, check_integer("num_views", num_views)

    def __call__(self, images, labels=None):
        if labels is None:
            if not (isinstance(images, (tuple, list)) and len(images) == 2):
                raise ValueError("AugMixViews needs (images, labels); got images only")
            images, labels = images
        views = [images] + [self.augment(images) for _ in range(self.num_views)]
        reps = self.num_views + 1
        return tf.concat(views, axis=0), tf.concat([labels] * reps, axis=0)
