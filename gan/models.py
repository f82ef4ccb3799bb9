"""Class-conditional GAN: DCGAN-style generator and projection discriminator, and the
`ConditionalGAN` keras.Model whose `train_step` runs one D and one G update with DiffAugment,
an optional ADA-style adaptive augmentation probability and an EMA copy of the generator.

Every random draw in a step (noise, augmentation) is stateless, keyed by `(seed, step)`, so a run
resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import keras
import tensorflow as tf

from gan.diffaugment import DEFAULT_POLICY, check_policy, diff_augment
from keras_aug.core.validation import check_integer, check_number

SUPPORTED_SIZES = (16, 32, 64, 128)
SUPPORTED_CHANNELS = (1, 3)


@dataclass
class GANConfig:
    """Everything needed to rebuild a GAN (stored as JSON next to every checkpoint).

    Args:
        image_shape: `(size, size, channels)`, size in 16/32/64/128, channels 1 or 3. The nets get
            one up/down-sampling block per doubling above 4x4, so depth scales with size.
        num_classes: number of classes (>= 2) the generator is conditioned on.
        value_range: the real data's value range; samples come back in it.
        latent_dim: noise dimension.
        g_width: generator channels at 4x4 (halved per upsampling block, at least 16).
        d_width: discriminator channels at full size (doubled per block, at most 256).
        policy: DiffAugment policy, a tuple of "color", "translation", "cutout" (empty: none).
        augment_p: probability that each DiffAugment op is applied to a sample (1 = DiffAugment).
        ada_target: if set, adapt `augment_p` so that r_t = E[sign(D(real))] stays near it (0.6).
        ada_interval: steps between adjustments of `augment_p`.
        ada_speed: change of `augment_p` per adjustment (as a fraction of [0, 1]).
        ema_decay: decay of the generator's exponential moving average (samples use the EMA).
        aux_weight: weight of the auxiliary classification loss (D on reals, G on fakes).
        diversity_weight: weight of a mode-seeking term for G (MSGAN, Mao et al. 2019): G is
            penalised by 1 / (mean |G(z1, y) - G(z2, y)| / mean |z1 - z2|), so two noise vectors
            of the same class must give different images. Counters the within-class collapse
            a class-conditional GAN shows on a few images per class (measured on digits at
            10/class: within-class L1 0.06 without it, 0.16 at 0.3, real images 0.14); 0 turns it off.
        g_lr, d_lr, beta_1: Adam settings.
        seed: seed of the weights init and of every per-step random draw.

    Example:
        >>> config = GANConfig(image_shape=(32, 32, 1), num_classes=10, diversity_weight=0.3)
        >>> GANConfig.from_dict(config.to_dict()) == config
        True
    """

    image_shape: tuple[int, int, int] = (32, 32, 1)
    num_classes: int = 10
    value_range: tuple[float, float] = (0.0, 255.0)
    latent_dim: int = 48
    g_width: int = 64
    d_width: int = 24
    policy: tuple[str, ...] = DEFAULT_POLICY
    augment_p: float = 1.0
    ada_target: float | None = None
    ada_interval: int = 4
    ada_speed: float = 0.01
    ema_decay: float = 0.995
    aux_weight: float = 1.0
    diversity_weight: float = 0.3
    g_lr: float = 5e-4
    d_lr: float = 5e-4
    beta_1: float = 0.5
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.image_shape = tuple(int(v) for v in self.image_shape)
        self.value_range = tuple(float(v) for v in self.value_range)
        self.policy = check_policy(self.policy)
        validate_config(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GANConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def validate_config(config: GANConfig) -> None:
    shape = config.image_shape
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] not in SUPPORTED_SIZES:
        raise ValueError(
            f"image_shape must be (size, size, channels) with size in {SUPPORTED_SIZES}, got "
            f"{shape!r}. Resize the images first (e.g. load_dataset(..., image_size=(32, 32)))."
        )
    if shape[2] not in SUPPORTED_CHANNELS:
        raise ValueError(f"image_shape channels must be 1 or 3, got {shape[2]} in {shape!r}")
    if not isinstance(config.num_classes, int) or config.num_classes < 2:
        raise ValueError(
            f"num_classes must be an integer >= 2 (a class-conditional GAN needs at least two "
            f"classes), got {config.num_classes!r}"
        )
    low, high = config.value_range
    if not low < high:
        raise ValueError(f"value_range must have low < high, got {config.value_range!r}")
    if not 0.0 <= config.augment_p <= 1.0:
        raise ValueError(f"augment_p must be a probability in [0, 1], got {config.augment_p!r}")
    for name in ("aux_weight", "diversity_weight"):
        check_number(name, getattr(config, name), low=0)
    if config.ada_target is not None and not 0.0 < config.ada_target < 1.0:
        raise ValueError(f"ada_target must be in (0, 1) (0.6 in ADA) or None, got {config.ada_target!r}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {config.ema_decay!r}")
    for name in ("latent_dim", "g_width", "d_width", "ada_interval"):
        check_integer(name, getattr(config, name))


def build_generator(config: GANConfig, name: str = "generator") -> keras.Model:
    """(noise (B, latent_dim), label (B,) int) -> image (B, S, S, C) in [-1, 1].

    Label embedding concatenated to the noise, a dense 4x4 map, then per doubling
    nearest-upsample + 3x3 conv + class-conditional GroupNorm + ReLU. GroupNorm (not BatchNorm) keeps a sample
    independent of the rest of its batch, so `sample(n, seed=)` is the same for any batch size
    and the EMA weights need no recomputed batch statistics.
    """
    size, _, channels = config.image_shape
    noise = keras.Input((config.latent_dim,), name="noise")
    label = keras.Input((), dtype="int32", name="label")
    embedded = keras.layers.Embedding(config.num_classes, config.latent_dim, name="label_embedding")(label)
    h = keras.layers.Concatenate()([noise, embedded])
    width = config.g_width
    h = keras.layers.Dense(4 * 4 * width, use_bias=False, name="project")(h)
    h = keras.layers.Reshape((4, 4, width))(h)
    h = _conditional_norm(h, label, config.num_classes, width, "project_norm")
    h = keras.layers.ReLU()(h)
    for i in range(int(math.log2(size)) - 2):
        width = max(config.g_width // 2 ** (i + 1), 16)
        h = keras.layers.UpSampling2D(2, name=f"up{i}")(h)
        h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}")(h)
        h = _conditional_norm(h, label, config.num_classes, width, f"norm{i}")
        h = keras.layers.ReLU()(h)
    image = keras.layers.Conv2D(channels, 3, padding="same", activation="tanh", name="to_image")(h)
    return keras.Model([noise, label], image, name=name)


@keras.saving.register_keras_serializable(package="gan")
class SumPool(keras.layers.Layer):
    """Sum over height and width, (B, H, W, C) -> (B, C). A layer rather than a Lambda so that the
    discriminator saves and loads as `.keras` (a Lambda loads only with safe_mode=False).

    Args:
        **kwargs: Keras layer arguments (`name`, `dtype`).

    Example:
        >>> SumPool()(tf.ones([2, 4, 4, 3])).shape
        TensorShape([2, 3])
    """

    def call(self, inputs):
        return tf.reduce_sum(inputs, axis=[1, 2])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def build_discriminator(config: GANConfig, name: str = "discriminator") -> keras.Model:
    """(image in [-1, 1], label) -> (real/fake logit, class logits). Strided 4x4 convs down to
    4x4, global sum pooling, a projection head: logit = w.h + embed(label).h (Miyato & Koyama
    2018), and an auxiliary classifier head (AC-GAN, Odena et al. 2017): with a few thousand
    steps on CPU the class signal of projection alone is learnt too slowly, the auxiliary
    cross-entropy teaches the generator its classes within a few hundred steps."""
    size, _, channels = config.image_shape
    image = keras.Input(config.image_shape, name="image")
    label = keras.Input((), dtype="int32", name="label")
    h = image
    for i in range(int(math.log2(size)) - 2):
        width = min(config.d_width * 2**i, 256)
        h = keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"down{i}")(h)
        h = keras.layers.LeakyReLU(0.2)(h)
    h = keras.layers.Conv2D(width, 3, padding="same", name="last_conv")(h)
    h = keras.layers.LeakyReLU(0.2)(h)
    features = SumPool(name="sum_pool")(h)
    unconditional = keras.layers.Dense(1, name="logit")(features)
    embedded = keras.layers.Embedding(config.num_classes, width, name="projection")(label)
    projection = keras.layers.Dot(axes=1)([embedded, features])
    logit = keras.layers.Add()([unconditional, projection])
    logit = keras.layers.Reshape(())(logit)
    class_logits = keras.layers.Dense(config.num_classes, name="classifier")(features)
    return keras.Model([image, label], [logit, class_logits], name=name)


def _cross_entropy(labels, logits):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def _conditional_norm(h, label, num_classes: int, width: int, name: str):
    """GroupNorm without affine terms, then a per-class scale and shift (class-conditional
    normalization as in BigGAN): the label steers every block, not only the input."""
    h = keras.layers.GroupNormalization(groups=min(8, width), center=False, scale=False, name=name)(h)
    gain = keras.layers.Embedding(num_classes, width, embeddings_initializer="zeros", name=f"{name}_gain")(label)
    bias = keras.layers.Embedding(num_classes, width, embeddings_initializer="zeros", name=f"{name}_bias")(label)
    gain = keras.layers.Reshape((1, 1, width))(gain)
    bias = keras.layers.Reshape((1, 1, width))(bias)
    return keras.layers.Add()([keras.layers.Multiply()([h, keras.layers.Rescaling(1.0, offset=1.0)(gain)]), bias])


class ConditionalGAN(keras.Model):
    """A class-conditional GAN trained with `fit` on `(images, labels)` batches in `value_range`.

    Each `train_step`: one discriminator update on DiffAugment(real) vs DiffAugment(G(z, y))
    (non-saturating logistic loss + auxiliary class cross-entropy on the reals), one generator
    update through DiffAugment (fool D + be classified as y), an EMA update of the generator, and
    (with `ada_target`) an adjustment of the augmentation probability from r_t = E[sign(D(real))].
    Fake samples use the real batch's labels, so the class balance follows the data.

    Most users call `gan.train_gan`, which adds checkpoints and exact resume around `fit`.

    Args:
        config: the `GANConfig` (image shape, classes, nets, losses, DiffAugment, seed).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
        >>> from keras_aug.data import few_shot, load_dataset
        >>> config = GANConfig(image_shape=(32, 32, 1), num_classes=10)
        >>> gan = ConditionalGAN(config)
        >>> gan.compile()
        >>> batches = few_shot(load_dataset("digits").train, 2).batch(10).repeat()
        >>> history = gan.fit(batches, steps_per_epoch=2, epochs=1, verbose=0)  # (uint8, int) batches
        >>> noise = tf.random.normal([4, config.latent_dim])
        >>> images = gan.generate(noise, tf.constant([0, 1, 2, 3]))              # in value_range
    """

    def __init__(self, config: GANConfig, **kwargs):
        super().__init__(name=kwargs.pop("name", "conditional_gan"), **kwargs)
        if not isinstance(config, GANConfig):
            raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
        self.config = config
        keras.utils.set_random_seed(config.seed)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.ema_generator = build_generator(config, name="ema_generator")
        self.ema_generator.set_weights(self.generator.get_weights())
        self.step_counter = keras.Variable(0, dtype="int64", trainable=False, name="step")
        self.augment_p = keras.Variable(config.augment_p, dtype="float32", trainable=False, name="augment_p")
        self._rt_sum = keras.Variable(0.0, dtype="float32", trainable=False, name="rt_sum")
        self._rt_count = keras.Variable(0.0, dtype="float32", trainable=False, name="rt_count")
        self.built = True

    def compile(self, g_optimizer=None, d_optimizer=None, jit_compile=False, **kwargs):
        """Adam for both nets by default. XLA is off by default: on 2 shared CPU cores compiling
        this two-tape step took 122 s before the first step against 49 s without, and the
        steps were not faster."""
        c = self.config
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(c.g_lr, beta_1=c.beta_1, name="g_adam")
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(c.d_lr, beta_1=c.beta_1, name="d_adam")
        # Built now, so a checkpoint can restore their slots before the first step.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        super().compile(jit_compile=jit_compile, **kwargs)

    # value-range mapping -------------------------------------------------------------------
    def to_unit(self, images):
        low, high = self.config.value_range
        images = tf.cast(images, tf.float32)
        return (images - low) * (2.0 / (high - low)) - 1.0

    def from_unit(self, images):
        low, high = self.config.value_range
        return (tf.clip_by_value(images, -1.0, 1.0) + 1.0) * ((high - low) / 2.0) + low

    def generate(self, noise, labels, ema: bool = True):
        """Images in `value_range` for noise (B, latent_dim) and integer labels (B,)."""
        generator = self.ema_generator if ema else self.generator
        return self.from_unit(generator([noise, tf.cast(labels, tf.int32)], training=False))

    def call(self, inputs, training=False):
        noise, labels = inputs
        return self.generate(noise, labels)

    # training ------------------------------------------------------------------------------
    def _augment(self, images, key):
        return diff_augment(images, key, self.config.policy, p=self.augment_p)

    def train_step(self, data):
        real, labels = data[0], data[1]
        real = self.to_unit(real)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        batch = tf.shape(real)[0]
        step = self.step_counter.value
        key = tf.random.experimental.stateless_fold_in(
            tf.constant([self.config.seed, 7919], tf.int64), step
        )
        keys = [tf.random.experimental.stateless_fold_in(key, i) for i in range(6)]
        latent = self.config.latent_dim

        noise = tf.random.stateless_normal([batch, latent], keys[0])
        aux = self.config.aux_weight
        with tf.GradientTape() as tape:
            fake = self.generator([noise, labels], training=True)
            d_real, class_real = self.discriminator([self._augment(real, keys[1]), labels], training=True)
            d_fake, _ = self.discriminator([self._augment(fake, keys[2]), labels], training=True)
            adversarial = tf.reduce_mean(tf.nn.softplus(-d_real)) + tf.reduce_mean(tf.nn.softplus(d_fake))
            class_loss = _cross_entropy(labels, class_real)
            d_loss = adversarial + aux * class_loss
        d_vars = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

        noise = tf.random.stateless_normal([batch, latent], keys[3])
        with tf.GradientTape() as tape:
            fake = self.generator([noise, labels], training=True)
            d_fake_g, class_fake = self.discriminator([self._augment(fake, keys[4]), labels], training=True)
            g_class_loss = _cross_entropy(labels, class_fake)
            g_loss = tf.reduce_mean(tf.nn.softplus(-d_fake_g)) + aux * g_class_loss
            diversity = tf.constant(0.0)
            if self.config.diversity_weight > 0:
                # A second noise vector for the first half of the batch, same labels.
                half = tf.maximum(batch // 2, 1)
                other_noise = tf.random.stateless_normal([half, latent], keys[5])
                other = self.generator([other_noise, labels[:half]], training=True)
                diversity = tf.reduce_mean(tf.abs(other - fake[:half])) / tf.reduce_mean(
                    tf.abs(other_noise - noise[:half]))
                g_loss += self.config.diversity_weight / (diversity + 1e-5)
        g_vars = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))

        self._update_ema(step)
        r_t = tf.reduce_mean(tf.sign(d_real))
        if self.config.ada_target is not None:
            self._update_ada(r_t)
        self.step_counter.assign_add(1)
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_class": class_loss,
            "g_class": g_class_loss,
            "g_diversity": diversity,
            "r_t": r_t,
            "p": self.augment_p.value,
            "d_real": tf.reduce_mean(d_real),
            "d_fake": tf.reduce_mean(d_fake),
        }

    def _update_ema(self, step):
        # Warm-up: average over the steps seen so far until the decay's horizon is reached.
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for ema_var, var in zip(self.ema_generator.weights, self.generator.weights):
            ema_var.assign(decay * ema_var + (1.0 - decay) * var)

    def _update_ada(self, r_t):
        """ADA-style controller: every `ada_interval` steps, move p up when D is too sure about
        the reals (mean sign of its real logits above the target), down otherwise."""
        c = self.config
        self._rt_sum.assign_add(r_t)
        self._rt_count.assign_add(1.0)
        due = self._rt_count >= float(c.ada_interval)
        mean_rt = self._rt_sum / tf.maximum(self._rt_count, 1.0)
        adjust = tf.sign(mean_rt - c.ada_target) * c.ada_speed
        new_p = tf.clip_by_value(self.augment_p + adjust, 0.0, 1.0)
        self.augment_p.assign(tf.where(due, new_p, self.augment_p))
        self._rt_sum.assign(tf.where(due, 0.0, self._rt_sum))
        self._rt_count.assign(tf.where(due, 0.0, self._rt_count))

    # checkpoint state ----------------------------------------------------------------------
    def state_variables(self) -> dict[str, list]:
        """Every variable a resumed run needs, by group, in a fixed order."""
        return {
            "generator": list(self.generator.weights),
            "discriminator": list(self.discriminator.weights),
            "ema_generator": list(self.ema_generator.weights),
            "counters": [self.step_counter, self.augment_p, self._rt_sum, self._rt_count],
            "g_optimizer": list(self.g_optimizer.variables),
            "d_optimizer": list(self.d_optimizer.variables),
        }
