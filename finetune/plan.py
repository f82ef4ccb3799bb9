"""`plan()`: which blocks of a pretrained backbone to freeze, where to attach the head, how to train.

The rule is CS231n's four cases, with explicit thresholds:

| | similar (similarity >= `similar_threshold`) | different |
|---|---|---|
| small (< `large_per_class` images/class) | head on the last block, backbone frozen | head on an earlier block (`earlier_cut_blocks` fewer), frozen |
| large | head first, then fine-tune the top `unfreeze_blocks` blocks | same, from the earlier cut |

Tie rule for small data: "similar" then needs similarity >= `similar_threshold` +
`small_tie_margin`. With tens of images the similarity estimate is noisy, and the two errors do not
cost the same: cutting one block early on similar data loses little, while keeping the most
task-specific block on different data loses much (measured, HED-VGG16 on digits 5-9 at 10/class:
block5 head 0.840 vs block4 head 0.93-0.95). Earlier layers' features are the more general ones
(Yosinski et al. 2014, "How transferable are features in deep neural networks?"), so a near tie
goes to the earlier cut. With large data a wrong cut is partly repaired by fine-tuning, so the
threshold applies as is (inclusive).

Phases: the head is trained first with the backbone frozen (a random head's large gradients would
otherwise wreck the pretrained filters); then the chosen blocks are unfrozen and the model is
recompiled with discriminative learning rates (fastai / ULMFiT): the head gets `finetune_lr`, the
block below it `finetune_lr * block_lr_decay`, the next `* block_lr_decay**2`, ... applied through
`keras.optimizers.MultiOptimizer` (present in Keras 3.15).

BatchNorm: every BatchNorm layer of the backbone stays frozen (`trainable=False`, which in Keras 3
also runs it in inference mode), in every phase, even inside unfrozen blocks: it uses and never
updates its moving statistics. Keras' default momentum 0.999 needs thousands of steps to converge,
so updating statistics on a few hundred small-data steps leaves them between two domains
(measured: evaluation at chance). Calling the backbone with `training=False` alone, as the Keras
transfer-learning guide does, is NOT enough here: measured in Keras 3.15.1, `fit` overrides the
`training=False` recorded for a nested model inside a functional model and the moving statistics
drift (tests/test_finetune.py checks they do not). `bn_policy="adapt"` instead re-estimates the
moving statistics once on the new training data before training (AdaBN, Li et al. 2016) and then
keeps them frozen the same way.

The same holds for a backbone given as a `keras.Model`: its BatchNorm layers, including those
inside composite layers (a custom layer holding sublayers), stay frozen in inference mode.
`plan()` refuses `bn_policy="adapt"` for BatchNorm inside composite layers, which AdaBN's pass
(one graph tap per BatchNorm input) cannot reach.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import keras
import numpy as np

from finetune.registry import Backbone, backbone_from_model, build_backbone, get_spec
from keras_aug.core.validation import check_integer

QUADRANTS = ("small+similar", "small+different", "large+similar", "large+different")
BN_POLICIES = ("inference", "adapt")


@dataclass
class Phase:
    """One training phase: which backbone blocks train, learning rate per group, epochs.

    Attributes:
        name: `"head"` or `"fine-tune"`.
        trainable_blocks: indices of the backbone blocks this phase trains.
        learning_rates: `"head"` and `"block{i}"` -> Adam learning rate.
        epochs: epochs of this phase.

    Example:
        >>> p = plan("DigitsCNN04", dataset_size=100, num_classes=10, similarity=0.9,
        ...          input_shape=(32, 32, 3))
        >>> [(phase.name, phase.trainable_blocks) for phase in p.phases]
        [('head', ())]
    """

    name: str
    trainable_blocks: tuple[int, ...]
    learning_rates: dict[str, float]  # "head" and "block{i}" for each trainable block
    epochs: int


@dataclass
class FinetunePlan:
    """The outcome of `plan()`: build the model with `build_model()`, train it with `fine_tune`.

    `explain()` prints the reasoning (quadrant, thresholds, cut point, phases, learning rates).

    Attributes:
        backbone: the registry name, or for a `keras.Model` backbone its name (a label only: such
            a plan rebuilds its backbone by cloning `backbone_model`, never from the name).
        weights: what the backbone loads: "imagenet", None or a file path; for a `keras.Model`,
            the weights file loaded into its clone, or None (the model's own weights).
        input_shape: the backbone's input (H, W, 3).
        preprocess: the input convention (`Preprocess`) applied before the backbone.
        backbone_model: the `keras.Model` given to `plan()`, or None for a registry backbone.
            It is never modified: each `build_model()` trains a clone.
        num_classes, dataset_size, similarity: the facts the plan was decided on.
        quadrant: e.g. `"small+similar"`, the CS231n case chosen.
        cut_block: index of the last backbone block kept; the head sits on its output.
        phases: the `Phase`s `fine_tune` runs in order.
        block_names: the backbone's block names.
        thresholds: the decision thresholds used.
        bn_policy, head_dropout, head_l2, backbone_kwargs: as passed to `plan()`.
        reasons: the sentences `explain()` prints.

    Example:
        >>> p = plan("DigitsCNN04", dataset_size=100, num_classes=10, similarity=0.9,
        ...          input_shape=(32, 32, 3))
        >>> p.quadrant
        'small+similar'
        >>> model = p.build_model()
    """

    backbone: str
    weights: str | None
    input_shape: tuple[int, int, int]  # the backbone's input (images are resized to it)
    num_classes: int
    dataset_size: int
    similarity: float | None
    quadrant: str
    cut_block: int
    phases: list[Phase]
    block_names: list[str]
    thresholds: dict
    bn_policy: str = "inference"
    head_dropout: float = 0.2
    head_l2: float = 1e-2
    backbone_kwargs: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    preprocess: str | None = None
    backbone_model: keras.Model | None = field(default=None, repr=False, compare=False)
    _backbone: Backbone | None = field(default=None, repr=False)

    @property
    def frozen_blocks(self) -> tuple[int, ...]:
        """Blocks (up to the cut) that no phase trains."""
        trained = {b for phase in self.phases for b in phase.trainable_blocks}
        return tuple(b for b in range(self.cut_block + 1) if b not in trained)

    def new_backbone(self) -> Backbone:
        """A freshly loaded backbone (the one `plan()` built is handed out once, then rebuilt,
        so two models from one plan never share fine-tuned weights). A `keras.Model` backbone is
        rebuilt as a new clone of `backbone_model`."""
        backbone, self._backbone = self._backbone, None
        if backbone is None and self.backbone_model is not None:
            backbone = backbone_from_model(self.backbone_model, self.preprocess, self.input_shape,
                                           self.weights)
        elif backbone is None:
            backbone = build_backbone(
                self.backbone, self.weights, self.input_shape, **self.backbone_kwargs
            )
        return backbone

    def explain(self, print_it: bool = True) -> str:
        """The reasoning: quadrant, thresholds and why; printed and returned."""
        t = self.thresholds
        per_class = self.dataset_size / self.num_classes
        sim = "not given (assumed similar)" if self.similarity is None else f"{self.similarity:.3f}"
        if self.backbone_model is None:
            source = f"weights={self.weights!r}"
        else:
            loaded = "its own weights" if self.weights is None else f"weights from {self.weights!r}"
            source = (f"your keras.Model, {loaded}, preprocess={self.preprocess!r}, blocks found in "
                      "its graph")
        lines = [
            f"Fine-tuning plan for {self.backbone} ({source}, input "
            f"{self.input_shape[0]}x{self.input_shape[1]}): quadrant {self.quadrant.upper()}",
            f"- data: {self.dataset_size} images / {self.num_classes} classes = {per_class:.1f} per "
            f"class; 'large' from large_per_class={t['large_per_class']} per class",
            f"- similarity to the pretraining data: {sim}; 'similar' from "
            f"similar_threshold={t['similar_threshold']}"
            + (f" (+ small_tie_margin={t['small_tie_margin']} for small data: ties go to the "
               "earlier cut)" if "small_tie_margin" in t else ""),
        ]
        lines += [f"- {reason}" for reason in self.reasons]
        lines.append(
            f"- head attaches after {self.block_names[self.cut_block]} (block {self.cut_block + 1} "
            f"of {len(self.block_names)}); frozen throughout: "
            + (", ".join(f"block{b + 1}" for b in self.frozen_blocks) or "none")
        )
        for i, phase in enumerate(self.phases, 1):
            rates = ", ".join(f"{k} {v:.1e}" for k, v in phase.learning_rates.items())
            trains = ", ".join(f"block{b + 1}" for b in phase.trainable_blocks) or "head only"
            lines.append(f"- phase {i} '{phase.name}': {phase.epochs} epochs, trains {trains}; "
                         f"learning rates: {rates}")
        if self.bn_policy == "inference":
            lines.append(
                "- BatchNorm: kept in inference mode (every BN layer trainable=False, even in unfrozen "
                "blocks): moving statistics are used and never updated, because momentum 0.999 does "
                "not converge in a few hundred small-data steps."
            )
        else:
            lines.append(
                "- BatchNorm: moving statistics re-estimated once on the training data (AdaBN), then "
                "kept in inference mode (trainable=False) so training never updates them."
            )
        text = "\n".join(lines)
        if print_it:
            print(text)
        return text

    def build_model(self, image_shape: tuple[int, int, int] | None = None) -> keras.Model:
        """The classifier: resize -> preprocess -> backbone up to the cut (training=False) -> head.

        Args:
            image_shape: shape of the dataset's images (H, W, 1 or 3), 0..255; default the
                backbone input shape. Images of another size are resized inside the model.
        """
        return build_finetune_model(self, image_shape)


def plan(
    backbone: str | keras.Model,
    dataset_size: int,
    num_classes: int,
    similarity: float | None = None,
    *,
    weights: str | None = "auto",
    preprocess: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
    large_per_class: float = 50,
    similar_threshold: float = 0.5,
    small_tie_margin: float = 0.05,
    earlier_cut_blocks: int = 1,
    unfreeze_blocks: int = 2,
    head_lr: float = 1e-3,
    finetune_lr: float = 1e-4,
    block_lr_decay: float = 0.5,
    head_epochs: int = 30,
    finetune_epochs: int = 10,
    bn_policy: str = "inference",
    head_dropout: float = 0.2,
    head_l2: float = 1e-2,
    **backbone_kwargs,
) -> FinetunePlan:
    """Decide how to fine-tune `backbone` on a dataset of `dataset_size` images.

    Args:
        backbone: registry name (see `finetune.list_backbones()`), or a functional or Sequential
            `keras.Model` without its classification top (your own, or a KerasHub backbone):
            its blocks are found in its graph (`backbone_from_model`); it is cloned, never
            modified.
        dataset_size: number of training images.
        num_classes: number of classes.
        similarity: in [0, 1], e.g. from `estimate_similarity`; None = unknown, treated as
            similar (the common case: natural photos on an ImageNet backbone).
        weights: "auto" (default): "imagenet" for a registry name, the model's own weights for a
            `keras.Model`. A registry name also takes "imagenet", None (random init) or a local
            weights file path (see `build_backbone`); a `keras.Model` takes None (its own weights)
            or a weights file path to load, and "imagenet" raises.
        preprocess: how 0..255 images are scaled before a `keras.Model` backbone: "built-in"
            (default for a model: it scales them itself, e.g. with a Rescaling layer), "unit"
            ([0, 1]), "tf" ([-1, 1]), "torch" or "caffe" (see `BackboneSpec`). A registry
            backbone knows its convention: leave None (or pass that same one).
        input_shape: backbone input (H, W, 3); default the registry's default size, or the
            model's input (a different one raises; it fills the model's None dimensions).
        large_per_class: images per class from which the data counts as "large" (default 50:
            below it, training conv blocks overfits more than it adapts; measured on digits).
        similar_threshold: similarity from which the domain counts as "similar" (default 0.5:
            the midpoint of the score; for the probe score, 0.5 means the last block's features
            are exactly as linearly separable as the best earlier block's).
        small_tie_margin: for small data (< `large_per_class`), "similar" needs similarity >=
            `similar_threshold + small_tie_margin`: a near tie goes to the earlier cut (see the
            module doc). Default 0.05: for the probe score, the last block must beat the best
            earlier block by about a tenth of the way from chance to the best accuracy.
        earlier_cut_blocks: for a different domain, how many top blocks to drop before the head
            (their features are the most specific to the pretraining task).
        unfreeze_blocks: for large data, how many of the kept top blocks to fine-tune; lower blocks
            (generic edges/textures) stay frozen.
        head_lr, finetune_lr, block_lr_decay: Adam learning rate of the head phase, of the head in
            the fine-tuning phase, and the factor per block going down (discriminative rates).
        head_epochs, finetune_epochs: epochs per phase.
        bn_policy: "inference" (BatchNorm frozen in inference mode) or "adapt" (re-estimate the
            moving statistics on the new data first, then frozen).
        head_dropout: dropout before the classification layer.
        head_l2: L2 penalty on the classification layer's kernel. With tens of images and
            hundreds of standardized features, an unpenalized head trained with Adam overfits:
            measured on HED-VGG16 block5 features, digits 5-9 at 10/class, 0.75 without, 0.82
            with 1e-2 (scikit-learn's L2 logistic regression: 0.85).
        **backbone_kwargs: passed to the backbone constructor (e.g. alpha=0.35).

    Example:
        >>> p = plan("DigitsCNN04", dataset_size=100, num_classes=10, similarity=0.3,
        ...          input_shape=(32, 32, 3))
        >>> p.quadrant, p.cut_block
        ('small+different', 1)
    """
    check_integer("dataset_size", dataset_size)
    check_integer("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if similarity is not None:
        if not isinstance(similarity, (int, float)) or not 0.0 <= float(similarity) <= 1.0:
            raise ValueError(f"similarity must be a number in [0, 1] or None, got {similarity!r}")
        similarity = float(similarity)
    if not 0.0 <= similar_threshold <= 1.0:
        raise ValueError(f"similar_threshold must be in [0, 1], got {similar_threshold!r}")
    if not 0.0 <= small_tie_margin <= 1.0:
        raise ValueError(f"small_tie_margin must be in [0, 1], got {small_tie_margin!r}")
    if large_per_class <= 0:
        raise ValueError(f"large_per_class must be positive, got {large_per_class!r}")
    for name, value in (("earlier_cut_blocks", earlier_cut_blocks), ("unfreeze_blocks", unfreeze_blocks)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    for name, value in (("head_lr", head_lr), ("finetune_lr", finetune_lr)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not 0 < block_lr_decay <= 1:
        raise ValueError(f"block_lr_decay must be in (0, 1], got {block_lr_decay!r}")
    if not head_l2 >= 0:
        raise ValueError(f"head_l2 must be >= 0, got {head_l2!r}")
    if bn_policy not in BN_POLICIES:
        raise ValueError(f"bn_policy must be one of {BN_POLICIES}, got {bn_policy!r}")
    if weights == "auto":
        weights = None if isinstance(backbone, keras.Model) else "imagenet"
    built = _plan_backbone(backbone, weights, preprocess, input_shape, backbone_kwargs)
    unreachable = _nested_batchnorms(built.model) if bn_policy == "adapt" else []
    if unreachable:
        raise ValueError(
            f"bn_policy='adapt' cannot reach the BatchNorm layers inside composite layers of "
            f"{built.name} ({', '.join(unreachable)}); use bn_policy='inference'."
        )
    n_blocks = len(built.blocks)

    per_class = dataset_size / num_classes
    large = per_class >= large_per_class
    needed = similar_threshold + (0.0 if large else small_tie_margin)
    similar = similarity is None or similarity >= needed
    quadrant = f"{'large' if large else 'small'}+{'similar' if similar else 'different'}"
    reasons = []
    if similarity is not None and not large and similar_threshold <= similarity < needed:
        reasons.append(f"near tie for small data: similarity {similarity:.3f} is within "
                       f"small_tie_margin={small_tie_margin} above similar_threshold, so the earlier "
                       "cut wins (earlier features are more general; with few images the estimate "
                       "is noisy, and keeping a too-specific block costs more than cutting early)")
    if similar:
        cut = n_blocks - 1
        reasons.append("similar domain: the last block's features (the most task-specific) fit, "
                       "so the head attaches at the end of the backbone")
    else:
        cut = max(0, n_blocks - 1 - earlier_cut_blocks)
        reasons.append(f"different domain: the top {earlier_cut_blocks} block(s) encode the "
                       "pretraining task's specifics, so the head attaches earlier, on more "
                       "generic features")
    phases = [Phase("head", (), {"head": head_lr}, head_epochs)]
    if large and unfreeze_blocks > 0 and finetune_epochs > 0:
        top = list(range(cut, max(-1, cut - unfreeze_blocks), -1))
        rates = {"head": finetune_lr}
        for depth, b in enumerate(top, 1):
            rates[f"block{b + 1}"] = finetune_lr * block_lr_decay ** depth
        phases.append(Phase("fine-tune", tuple(sorted(top)), rates, finetune_epochs))
        reasons.append(f"large data: after the head converges, the top {len(top)} kept block(s) "
                       f"are fine-tuned with learning rates decaying x{block_lr_decay} per block; "
                       "lower blocks keep their generic filters frozen")
    else:
        reasons.append("small data: training conv blocks would overfit, so only the head trains "
                       "on frozen features")
    return FinetunePlan(
        backbone=built.name, weights=weights, input_shape=built.input_shape,
        num_classes=num_classes, dataset_size=dataset_size, similarity=similarity,
        quadrant=quadrant, cut_block=cut, phases=phases,
        block_names=[b.name for b in built.blocks],
        thresholds={"large_per_class": large_per_class, "similar_threshold": similar_threshold,
                    "small_tie_margin": small_tie_margin,
                    "earlier_cut_blocks": earlier_cut_blocks, "unfreeze_blocks": unfreeze_blocks},
        bn_policy=bn_policy, head_dropout=head_dropout, head_l2=head_l2,
        backbone_kwargs=backbone_kwargs, reasons=reasons, preprocess=built.spec.preprocess,
        backbone_model=backbone if isinstance(backbone, keras.Model) else None, _backbone=built,
    )


def _plan_backbone(backbone, weights, preprocess, input_shape, backbone_kwargs) -> Backbone:
    """Build the backbone `plan()` decides on: a registry name or a user's `keras.Model`."""
    if isinstance(backbone, keras.Model):
        if backbone_kwargs:
            raise TypeError(
                f"backbone keyword arguments {sorted(backbone_kwargs)} only apply to registry "
                "names; a keras.Model backbone is already built"
            )
        return backbone_from_model(backbone, "built-in" if preprocess is None else preprocess,
                                   input_shape, weights)
    if not isinstance(backbone, str):
        raise TypeError(
            f"backbone must be a registry name (str) or a keras.Model, got {type(backbone).__name__}"
        )
    spec = get_spec(backbone)
    if preprocess is not None and preprocess != spec.preprocess:
        raise ValueError(
            f"preprocess={preprocess!r} does not apply to registry backbone {spec.name}, which "
            f"expects {spec.preprocess!r}; preprocess= is for a keras.Model backbone"
        )
    if input_shape is None:
        input_shape = (spec.default_size, spec.default_size, 3)
    return build_backbone(backbone, weights, input_shape, **backbone_kwargs)


# ---------------------------------------------------------------- the model a plan trains


def build_finetune_model(p: FinetunePlan, image_shape=None) -> keras.Model:
    """See `FinetunePlan.build_model`. Layer names: 'resize', 'preprocess_*', 'trunk', 'head'
    (GlobalAveragePooling2D -> FeatureStandardization -> Dropout -> Dense)."""
    backbone = p.new_backbone()
    image_shape = tuple(image_shape or p.input_shape)
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3):
        raise ValueError(f"image_shape must be (H, W, 1 or 3), got {image_shape}")
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    if tuple(image_shape[:2]) != tuple(p.input_shape[:2]):
        x = keras.layers.Resizing(*p.input_shape[:2], name="resize")(x)
    x = backbone.preprocess_layer()(x)
    trunk = backbone.feature_extractor(p.cut_block)
    # training=False for the backbone's dropout; BatchNorm is frozen by set_trainable_blocks,
    # because fit overrides this flag for a nested model (see module doc).
    features = trunk(x, training=False)
    head = keras.Sequential(
        [
            keras.Input(features.shape[1:]),
            keras.layers.GlobalAveragePooling2D(name="head_pool"),
            # Standardizes the pooled features (fine_tune adapts it on the training data once):
            # raw backbone features (e.g. VGG's, caffe-scaled) are far from unit scale, and a
            # linear head on them trains poorly in a few hundred steps.
            FeatureStandardization(name="head_norm"),
            keras.layers.Dropout(p.head_dropout, name="head_dropout"),
            keras.layers.Dense(p.num_classes, name="head_logits",
                               kernel_regularizer=keras.regularizers.L2(p.head_l2) if p.head_l2 else None),
        ],
        name="head",
    )
    model = keras.Model(inputs, head(features), name=f"{p.backbone.lower()}_finetune")
    model.finetune_plan = p
    model.kaug_backbone = backbone
    model.trunk = trunk
    model.head = head
    set_trainable_blocks(model, ())
    return model


@keras.saving.register_keras_serializable(package="kaug_finetune")
class FeatureStandardization(keras.layers.Layer):
    """(x - mean) / sqrt(max(var, floor)): a StandardScaler for pooled features.

    `set_statistics(features)` fits it. The variance floor (`floor_fraction` x the mean channel
    variance) matters with few images: a ReLU channel that is (almost) never active in the training
    set has ~0 variance, and dividing by it makes that channel explode on new images (measured:
    Keras' Normalization, epsilon 1e-7, cost a frozen VGG16 head 10+ points on digits).
    """

    def __init__(self, floor_fraction: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.floor_fraction = floor_fraction

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.mean = self.add_weight(shape=(dim,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(dim,), initializer="ones", trainable=False, name="scale")

    def set_statistics(self, features) -> None:
        features = np.asarray(features, np.float64)
        var = features.var(axis=0)
        floor = self.floor_fraction * float(var.mean()) + 1e-12
        self.mean.assign(features.mean(axis=0).astype("float32"))
        self.scale.assign((1.0 / np.sqrt(np.maximum(var, floor))).astype("float32"))

    def call(self, x):
        return (x - self.mean) * self.scale

    def get_config(self):
        return {**super().get_config(), "floor_fraction": self.floor_fraction}


def set_trainable_blocks(model: keras.Model, blocks) -> None:
    """Freeze the whole backbone except `blocks` (indices); the head always trains."""
    p: FinetunePlan = model.finetune_plan
    blocks = set(blocks)
    backbone: Backbone = model.kaug_backbone
    for block in backbone.blocks[: p.cut_block + 1]:
        for name in block.layers:
            layer = _layer_or_none(backbone.model, name)
            if layer is not None:
                # BatchNorm never trains: trainable=False is what keeps it in inference mode.
                is_bn = isinstance(layer, keras.layers.BatchNormalization)
                layer.trainable = block.index in blocks and not is_bn
                for inner in _sublayers(layer):  # trainable=True reached a composite's BNs too
                    if isinstance(inner, keras.layers.BatchNormalization):
                        inner.trainable = False
    model.trunk.trainable = True  # container flag; per-layer flags above decide
    for layer in model.trunk.layers:
        if layer.name not in backbone.block_of_layer():
            layer.trainable = False


def _sublayers(layer) -> list:
    """Every layer inside `layer` (recursively), not `layer` itself."""
    return list(layer._flatten_layers(include_self=False, recursive=True))


def _nested_batchnorms(model: keras.Model) -> list[str]:
    """Names of BatchNorm layers held inside other layers (not nodes of `model`'s graph)."""
    return [f"{layer.name}/{inner.name}" for layer in model.layers for inner in _sublayers(layer)
            if isinstance(inner, keras.layers.BatchNormalization)]


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None  # an op (e.g. `add`) rather than a layer


def phase_optimizer(model: keras.Model, phase: Phase) -> keras.optimizers.Optimizer:
    """Adam per learning-rate group: a plain Adam for one group, else a MultiOptimizer whose
    OptimizerMap routes each block's variables (by variable path) to its own Adam."""
    if len(phase.learning_rates) == 1:
        return keras.optimizers.Adam(phase.learning_rates["head"])
    backbone: Backbone = model.kaug_backbone
    optimizer_map = keras.optimizers.OptimizerMap(
        default_optimizer=keras.optimizers.Adam(phase.learning_rates["head"])
    )
    for b in phase.trainable_blocks:
        names = [n for n in backbone.blocks[b].layers if _layer_or_none(backbone.model, n)]
        pattern = "(?:" + "|".join(re.escape(n) for n in names) + ")/.*"
        optimizer_map[pattern] = keras.optimizers.Adam(phase.learning_rates[f"block{b + 1}"])
    return keras.optimizers.MultiOptimizer(optimizer_map)


def compile_for_phase(model: keras.Model, phase: Phase, jit_compile: bool | str = "auto",
                      target: keras.Model | None = None) -> None:
    """Set the phase's trainable blocks and (re)compile: Keras reads `trainable` at compile time.

    `target` is the model that will be fitted when it is not `model` itself (e.g. a runner over
    cached frozen features that shares `model`'s upper blocks and head).
    """
    set_trainable_blocks(model, phase.trainable_blocks)
    (target or model).compile(
        optimizer=phase_optimizer(model, phase),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    model.current_phase = phase.name
