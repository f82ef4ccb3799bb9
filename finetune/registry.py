"""Backbone registry over every `keras.applications` model.

Each entry knows how to build the model without its top, its `preprocess_input` convention, its
minimum and default input size. `build_backbone` returns a `Backbone` whose `blocks` are whole
stages: freezing and cutting happen at those boundaries, never at arbitrary layer counts.

Block boundaries are found from the graph, not hand-written per family: a layer is a *cut point*
when every later layer depends on the input only through it (no skip connection jumps over it),
so the model cut there is a valid single-tensor feature extractor. A *block* (stage) ends at the
last cut point before the spatial resolution drops, as timm's `features_only` does. VGG16's blocks
therefore end at block1_conv2, block2_conv2, block3_conv3, block4_conv3 and block5_pool; ResNet50's
at conv1_relu, conv2_block3_out, ... NASNet's cells read the two previous cells, so it has few cuts.

`backbone_from_model` makes a `Backbone` from a user's own functional or Sequential `keras.Model`
(or a KerasHub backbone) the same way: blocks from its graph, a preprocessing convention given by
the caller (a model does not know its own), and a clone so the user's model is never modified.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np

PREPROCESS_CONVENTIONS = ("caffe", "tf", "torch", "built-in", "unit")
# torchvision / `mode="torch"` statistics and Caffe's BGR means (keras imagenet_utils).
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class BackboneSpec:
    """What the registry knows about one backbone.

    Attributes:
        name: registry name, e.g. "MobileNetV2".
        constructor: `f(weights=, include_top=False, input_shape=, **kwargs) -> keras.Model`.
        preprocess: input convention: "caffe" (RGB->BGR, minus ImageNet means, 0..255 scale),
            "tf" (scale to [-1, 1]), "torch" (scale to [0, 1], ImageNet mean/std), "built-in"
            (the model normalizes 0..255 input itself) or "unit" (scale to [0, 1], as a model
            trained on `x / 255` expects; no keras.applications model uses it).
        min_size: smallest height/width the architecture accepts.
        default_size: the ImageNet training resolution.
        family: module in keras.applications (where its `preprocess_input` lives) or "custom".
        description: one line shown by the CLI.
        pretrained_path: custom backbones: the file `weights="imagenet"` loads.

    Example:
        >>> spec = get_spec("VGG16")
        >>> spec.preprocess, spec.min_size, spec.default_size
        ('caffe', 32, 224)
    """

    name: str
    constructor: Callable[..., keras.Model]
    preprocess: str
    min_size: int
    default_size: int
    family: str
    description: str = ""
    pretrained_path: str | None = None  # custom backbones: file that weights="imagenet" loads


def _application(name: str) -> Callable[..., keras.Model]:
    # Looked up at call time so the registry also works if keras is monkeypatched in tests.
    def build(**kwargs):
        return getattr(keras.applications, name)(**kwargs)

    build.__name__ = name
    return build


# name: (keras.applications module, preprocess convention, min size, default size)
_APPLICATIONS: dict[str, tuple[str, str, int, int]] = {
    "ConvNeXtTiny": ("convnext", "built-in", 32, 224),
    "ConvNeXtSmall": ("convnext", "built-in", 32, 224),
    "ConvNeXtBase": ("convnext", "built-in", 32, 224),
    "ConvNeXtLarge": ("convnext", "built-in", 32, 224),
    "ConvNeXtXLarge": ("convnext", "built-in", 32, 224),
    "DenseNet121": ("densenet", "torch", 32, 224),
    "DenseNet169": ("densenet", "torch", 32, 224),
    "DenseNet201": ("densenet", "torch", 32, 224),
    "EfficientNetB0": ("efficientnet", "built-in", 32, 224),
    "EfficientNetB1": ("efficientnet", "built-in", 32, 240),
    "EfficientNetB2": ("efficientnet", "built-in", 32, 260),
    "EfficientNetB3": ("efficientnet", "built-in", 32, 300),
    "EfficientNetB4": ("efficientnet", "built-in", 32, 380),
    "EfficientNetB5": ("efficientnet", "built-in", 32, 456),
    "EfficientNetB6": ("efficientnet", "built-in", 32, 528),
    "EfficientNetB7": ("efficientnet", "built-in", 32, 600),
    "EfficientNetV2B0": ("efficientnet_v2", "built-in", 32, 224),
    "EfficientNetV2B1": ("efficientnet_v2", "built-in", 32, 240),
    "EfficientNetV2B2": ("efficientnet_v2", "built-in", 32, 260),
    "EfficientNetV2B3": ("efficientnet_v2", "built-in", 32, 300),
    "EfficientNetV2S": ("efficientnet_v2", "built-in", 32, 384),
    "EfficientNetV2M": ("efficientnet_v2", "built-in", 32, 480),
    "EfficientNetV2L": ("efficientnet_v2", "built-in", 32, 480),
    "InceptionResNetV2": ("inception_resnet_v2", "tf", 75, 299),
    "InceptionV3": ("inception_v3", "tf", 75, 299),
    "MobileNet": ("mobilenet", "tf", 32, 224),
    "MobileNetV2": ("mobilenet_v2", "tf", 32, 224),
    "MobileNetV3Small": ("mobilenet_v3", "built-in", 32, 224),
    "MobileNetV3Large": ("mobilenet_v3", "built-in", 32, 224),
    "NASNetMobile": ("nasnet", "tf", 32, 224),
    "NASNetLarge": ("nasnet", "tf", 32, 331),
    "ResNet50": ("resnet", "caffe", 32, 224),
    "ResNet101": ("resnet", "caffe", 32, 224),
    "ResNet152": ("resnet", "caffe", 32, 224),
    "ResNet50V2": ("resnet_v2", "tf", 32, 224),
    "ResNet101V2": ("resnet_v2", "tf", 32, 224),
    "ResNet152V2": ("resnet_v2", "tf", 32, 224),
    "VGG16": ("vgg16", "caffe", 32, 224),
    "VGG19": ("vgg19", "caffe", 32, 224),
    "Xception": ("xception", "tf", 71, 299),
}

REGISTRY: dict[str, BackboneSpec] = {
    name: BackboneSpec(name, _application(name), conv, min_size, default, module)
    for name, (module, conv, min_size, default) in _APPLICATIONS.items()
}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a custom backbone (e.g. one pretrained here) so plans and the CLI can use it by name.

    Args:
        spec: the `BackboneSpec`; its constructor takes `weights=, include_top=, input_shape=`.

    Example:
        >>> def tiny(weights=None, include_top=False, input_shape=(32, 32, 3), **kwargs):
        ...     inputs = keras.Input(input_shape)
        ...     x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
        ...     return keras.Model(inputs, x)
        >>> spec = register_backbone(BackboneSpec("TinyCNN", tiny, "tf", min_size=8,
        ...                                       default_size=32, family="custom"))
        >>> "TinyCNN" in list_backbones()
        True
        >>> del REGISTRY["TinyCNN"]              # the registry is global: clean up
    """
    if not isinstance(spec, BackboneSpec):
        raise TypeError(f"spec must be a BackboneSpec, got {type(spec).__name__}")
    if spec.preprocess not in PREPROCESS_CONVENTIONS:
        raise ValueError(
            f"spec.preprocess must be one of {PREPROCESS_CONVENTIONS}, got {spec.preprocess!r}"
        )
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> BackboneSpec:
    """The registry entry for `name`, with a did-you-mean error for unknown names.

    Args:
        name: a registry name, e.g. `"MobileNetV2"` or `"DigitsCNN04"`.

    Example:
        >>> get_spec("DigitsCNN04").preprocess
        'tf'
    """
    if not isinstance(name, str):
        raise TypeError(f"backbone must be a registry name (str), got {type(name).__name__}")
    if name not in REGISTRY:
        _register_shipped()
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown backbone {name!r}.{hint} Known backbones: {', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[name]


def list_backbones() -> list[str]:
    """All registry names (every keras.applications model plus registered custom ones).

    Example:
        >>> "MobileNetV2" in list_backbones() and "DigitsCNN04" in list_backbones()
        True
    """
    _register_shipped()
    return sorted(REGISTRY)


def _register_shipped() -> None:
    from finetune import digits_backbone  # registers "DigitsCNN04"

    digits_backbone.register()


@keras.saving.register_keras_serializable(package="kaug_finetune")
class Preprocess(keras.layers.Layer):
    """A backbone's `preprocess_input` as a layer, for 0..255 RGB or grayscale input.

    Grayscale (1 channel) input is repeated to 3 channels first, so small grayscale datasets such as
    digits feed ImageNet backbones. Equal to `keras.applications.<family>.preprocess_input`.

    Args:
        convention: `"caffe"`, `"tf"`, `"torch"`, `"built-in"` or `"unit"` (see `BackboneSpec`).

    Example:
        >>> out = Preprocess("tf")(np.full((1, 2, 2, 1), 255.0, "float32"))
        >>> out.shape, float(out[0, 0, 0, 0])
        (TensorShape([1, 2, 2, 3]), 1.0)
    """

    def __init__(self, convention: str, **kwargs):
        super().__init__(**kwargs)
        if convention not in PREPROCESS_CONVENTIONS:
            raise ValueError(
                f"convention must be one of {PREPROCESS_CONVENTIONS}, got {convention!r}"
            )
        self.convention = convention

    def call(self, images):
        x = keras.ops.cast(images, "float32")
        if x.shape[-1] == 1:
            x = keras.ops.concatenate([x, x, x], axis=-1)
        if self.convention == "tf":
            return x / 127.5 - 1.0
        if self.convention == "unit":
            return x / 255.0
        if self.convention == "torch":
            return (x / 255.0 - np.array(_TORCH_MEAN, "float32")) / np.array(_TORCH_STD, "float32")
        if self.convention == "caffe":
            return keras.ops.flip(x, axis=-1) - np.array(_CAFFE_BGR_MEAN, "float32")
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def get_config(self):
        return {**super().get_config(), "convention": self.convention}


@dataclass
class Block:
    """A whole stage of a backbone: `layers` (names, graph order) ending at the cut point `end`."""

    index: int
    end: str
    layers: list[str]
    output_shape: tuple

    @property
    def name(self) -> str:
        return f"block{self.index + 1}({self.end})"


@dataclass
class Backbone:
    """A built backbone (no top) with its spec and its block boundaries; `build_backbone` makes one.

    Attributes:
        spec: its `BackboneSpec`.
        model: the Keras model without its classification top.
        weights: what was loaded (`"imagenet"`, a path, or None).
        blocks: the block boundaries found in the graph (cut points before each resolution drop).

    Example:
        >>> backbone = build_backbone("DigitsCNN04", input_shape=(32, 32, 3))
        >>> backbone.input_shape, len(backbone.blocks)
        ((32, 32, 3), 3)
    """

    spec: BackboneSpec
    model: keras.Model
    weights: str | None
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> tuple:
        return tuple(self.model.input_shape[1:])

    def preprocess_layer(self) -> Preprocess:
        return Preprocess(self.spec.preprocess, name=f"preprocess_{self.spec.preprocess}".replace("-", "_"))

    def feature_extractor(self, cut_block: int) -> keras.Model:
        """The backbone up to and including block `cut_block` (0-based) as a Model."""
        if not 0 <= cut_block < len(self.blocks):
            raise ValueError(
                f"cut_block must be in [0, {len(self.blocks) - 1}] for {self.name}, got {cut_block}"
            )
        if cut_block == len(self.blocks) - 1 and self.blocks[-1].end == self.model.layers[-1].name:
            return self.model
        end = self.blocks[cut_block].end
        return keras.Model(self.model.input, block_output(self.model, end),
                           name=f"{self.model.name}_to_{end}")

    def block_of_layer(self) -> dict[str, int]:
        return {layer: block.index for block in self.blocks for layer in block.layers}


def block_output(model: keras.Model, end: str):
    """The output tensor of the op named `end` (a layer, or an op such as ConvNeXt's `add`)."""
    for op in model.operations:
        if op.name == end:
            return op.output
    raise ValueError(f"{model.name} has no layer or op named {end!r}")


def build_backbone(
    name: str,
    weights: str | None = "imagenet",
    input_shape: tuple[int, int, int] | None = None,
    **kwargs,
) -> Backbone:
    """Build registry backbone `name` without its classification top.

    Args:
        name: a registry name (`list_backbones()`), e.g. "MobileNetV2".
        weights: "imagenet" (default; the pretrained weights: for keras.applications they download
            once and need internet, a custom backbone loads its shipped file), None (random init),
            or the path of a local weights file for this architecture (e.g. from `save_weights`).
        input_shape: (height, width, 3); default the backbone's ImageNet resolution. Height and
            width must be at least the backbone's minimum (`get_spec(name).min_size`).
        **kwargs: passed to the constructor (e.g. `alpha=0.35` for MobileNetV2).

    Example:
        >>> backbone = build_backbone("DigitsCNN04", input_shape=(32, 32, 3))  # shipped weights
        >>> random_vgg = build_backbone("VGG16", weights=None, input_shape=(32, 32, 3))
    """
    spec = get_spec(name)
    if input_shape is None:
        input_shape = (spec.default_size, spec.default_size, 3)
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            f"input_shape must be (height, width, 3) for the backbone (grayscale is repeated to 3 "
            f"channels by Preprocess), got {input_shape}"
        )
    if min(input_shape[:2]) < spec.min_size:
        raise ValueError(
            f"input_shape {input_shape} is smaller than {name}'s minimum input size "
            f"{spec.min_size}x{spec.min_size}; resize images to at least that (e.g. image_size="
            f"{max(spec.min_size, 32)})."
        )
    weights = _check_weights(weights)
    if weights == "imagenet" and spec.pretrained_path is not None:
        weights = spec.pretrained_path  # a custom backbone's shipped pretrained weights
    try:
        model = spec.constructor(weights=None if _is_path(weights) else weights,
                                 include_top=False, input_shape=input_shape, **kwargs)
    except Exception as err:  # e.g. offline with weights="imagenet"
        if weights == "imagenet":
            raise ValueError(
                f"Could not build {name} with weights='imagenet' ({type(err).__name__}: {err}). "
                "Offline, pass weights=PATH to a local weights file, or weights=None."
            ) from err
        raise
    if _is_path(weights):
        load_backbone_weights(model, weights, name)
    backbone = Backbone(spec, model, weights)
    backbone.blocks = find_blocks(model)
    return backbone


def backbone_from_model(
    model: keras.Model,
    preprocess: str = "built-in",
    input_shape: tuple[int, int, int] | None = None,
    weights: str | None = None,
) -> Backbone:
    """A `Backbone` from a functional or Sequential `keras.Model` without its top.

    The model is cloned (layers rebuilt from their configs, weights copied), so fine-tuning the
    result never changes the caller's model; blocks come from the clone's graph (`find_blocks`).
    A nested model inside it is one node of that graph, so its stages and BatchNorm layers could
    not be reached: it raises and names the inner model to pass instead. Composite layers (a
    custom layer holding sublayers) stay whole inside their block.

    Args:
        model: a functional model (`keras.Model(inputs, outputs)`, KerasHub backbones are) or a
            `keras.Sequential` that starts with `keras.Input`; one image input (H, W, 3) and one
            (batch, H, W, C) feature-map output. For a classifier, pass its feature part:
            `keras.Model(model.input, model.get_layer(NAME).output)`.
        preprocess: how 0..255 images are scaled before the model (see `BackboneSpec`):
            "built-in" (default: the model scales them itself, e.g. with a Rescaling layer),
            "unit" ([0, 1]), "tf" ([-1, 1]), "torch" or "caffe".
        input_shape: (H, W, 3); default the model's. It must match the model's input, except
            where that is None (e.g. KerasHub's `image_shape=(None, None, 3)`), which it fixes.
        weights: None (keep the model's weights) or the path of a weights file saved from this
            architecture (`model.save_weights`), loaded into the clone.

    Example:
        >>> inputs = keras.Input((32, 32, 3))
        >>> x = keras.layers.Conv2D(8, 3, padding="same", name="c1")(inputs)
        >>> x = keras.layers.MaxPooling2D(name="p1")(x)
        >>> x = keras.layers.Conv2D(16, 3, padding="same", name="c2")(x)
        >>> backbone = backbone_from_model(keras.Model(inputs, x, name="mine"), preprocess="unit")
        >>> backbone.name, [b.end for b in backbone.blocks]
        ('mine', ['c1', 'c2'])
    """
    graph = _as_graph(model)
    name = model.name
    if preprocess not in PREPROCESS_CONVENTIONS:
        raise ValueError(f"preprocess must be one of {PREPROCESS_CONVENTIONS}, got {preprocess!r}")
    if weights == "imagenet":
        raise ValueError(
            f"weights='imagenet' does not apply to a keras.Model backbone ({name!r}): it brings "
            "its own weights. Pass weights=None to keep them, or the path of a weights file saved "
            "from this architecture."
        )
    weights = _check_weights(weights)
    shape = _model_input_shape(graph, name, input_shape)
    try:
        source = graph.inputs[0]
        inputs = keras.Input(shape, dtype=source.dtype, name=source._keras_history[0].name)
        clone = keras.models.clone_model(graph, input_tensors=inputs)
    except Exception as err:
        raise ValueError(
            f"backbone {name!r} could not be cloned ({type(err).__name__}: {str(err)[:200]}): every "
            "layer must rebuild from get_config() (give custom layers a get_config with their "
            "constructor arguments)."
        ) from None
    if weights is None:
        clone.set_weights(graph.get_weights())
    else:
        load_backbone_weights(clone, weights, name)
    spec = BackboneSpec(name, _not_rebuildable(name), preprocess, min(shape[:2]), shape[0],
                        "keras.Model", description="a keras.Model given to plan()")
    return Backbone(spec, clone, weights, find_blocks(clone))


def _as_graph(model) -> keras.Model:
    """The model as a plain single-input, single-output functional graph (sharing its layers)."""
    from keras.src.models.functional import Functional

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    name = model.name
    if isinstance(model, keras.Sequential):
        try:
            model.inputs
        except AttributeError:
            raise ValueError(
                f"Sequential backbone {name!r} has no input shape yet: start it with "
                "keras.Input((H, W, 3)) so its layers form a graph."
            ) from None
    elif not isinstance(model, Functional):
        raise TypeError(
            f"backbone {name!r} is a subclassed keras.Model ({type(model).__name__}): its call() is "
            "Python code, so there is no layer graph to split into blocks. Build it with the "
            "functional API (keras.Model(inputs, outputs)) or keras.Sequential, or register a "
            "constructor with register_backbone()."
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"backbone {name!r} must have one image input and one feature-map output, got "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    graph = keras.Model(model.inputs[0], model.outputs[0], name=name)
    nested = [op.name for op in graph.operations if isinstance(op, keras.Model)]
    if nested:
        raise ValueError(
            f"backbone {name!r} contains nested model(s) {nested}: a nested model is a single node "
            "of the graph, so blocks (and its BatchNorm layers) inside it cannot be reached. Pass "
            f"the inner model itself, e.g. plan(model.get_layer({nested[0]!r}), ...), or build one "
            "flat functional model that calls its layers directly."
        )
    out = graph.outputs[0].shape
    if len(out) != 4:
        maps = [op.name for op in graph.operations if len(getattr(op.output, "shape", ())) == 4]
        hint = (f", e.g. keras.Model(model.input, model.get_layer({maps[-1]!r}).output)"
                if maps else "")
        raise ValueError(
            f"backbone {name!r} outputs shape {tuple(out)}; the head pools a (batch, H, W, C) "
            f"feature map, so pass the model without its classification top{hint}."
        )
    return graph


def _model_input_shape(graph, name, input_shape) -> tuple[int, int, int]:
    """The model's (H, W, 3) input, with None dimensions filled from `input_shape`."""
    own = tuple(graph.inputs[0].shape[1:])
    if len(own) != 3 or own[-1] != 3:
        raise ValueError(
            f"backbone {name!r} takes input {own}; it must take (H, W, 3) images (grayscale is "
            "repeated to 3 channels by Preprocess)."
        )
    if input_shape is None:
        if None in own:
            raise ValueError(
                f"backbone {name!r} takes input {own} of undefined size: pass input_shape=(H, W, 3)."
            )
        return own
    given = tuple(int(s) for s in input_shape)
    if len(given) != 3 or any(o is not None and o != g for o, g in zip(own, given)):
        raise ValueError(
            f"input_shape={given} does not match backbone {name!r}'s input {own}; leave "
            "input_shape=None to use the model's own."
        )
    return given


def _not_rebuildable(name: str) -> Callable[..., keras.Model]:
    def constructor(**kwargs):
        raise TypeError(
            f"backbone {name!r} came from a keras.Model, not the registry: it has no constructor. "
            "FinetunePlan.new_backbone() clones the model instead."
        )

    return constructor


def _is_path(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and str(weights) != "imagenet"


def _check_weights(weights):
    if weights is None or weights == "imagenet":
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            f"weights must be 'imagenet', None or a file path, got {type(weights).__name__}"
        )
    path = os.path.expanduser(str(weights))
    if not os.path.isfile(path):
        raise ValueError(
            f"weights={str(weights)!r} is neither 'imagenet', None, nor an existing weights file."
        )
    return path


def load_backbone_weights(model: keras.Model, path: str, name: str) -> None:
    """`model.load_weights(path)` with a clear error when the file is for another architecture."""
    import warnings

    try:
        # skip_mismatch=False: every layer must match by name and shape.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per nested container it skips
            model.load_weights(path)
    except Exception as err:
        raise ValueError(
            f"weights file {path!r} does not match backbone {name} with input "
            f"{tuple(model.input_shape[1:])} (was it saved from another architecture, or with "
            f"include_top=True?): {type(err).__name__}: {str(err)[:300]}"
        ) from None
    # load_weights by layer order can silently accept a file with fewer layers; check the count.
    import h5py

    with h5py.File(path, "r") as f:
        n_in_file = _count_variables(f)
    n_model = len(model.weights)
    if n_in_file is not None and n_in_file != n_model:
        raise ValueError(
            f"weights file {path!r} holds {n_in_file} variables but backbone {name} has {n_model}: "
            "it was saved from another architecture."
        )


def _count_variables(f) -> int | None:
    if "layers" not in f and "_layer_checkpoint_dependencies" not in f:
        return None
    count = 0

    def visit(_, obj):
        nonlocal count
        import h5py

        if isinstance(obj, h5py.Dataset):
            count += 1

    f.visititems(visit)
    return count


def find_blocks(model: keras.Model) -> list[Block]:
    """Whole blocks of a functional backbone: runs of layers between stage-ending cut points.

    A cut point is an operation that no edge of the graph jumps over (see the module docstring);
    a block ends at the last cut point before the next downsampling. Blocks without weights
    (input, rescaling) are merged into the following block.
    """
    ops = list(model.operations)
    index = {id(op): i for i, op in enumerate(ops)}
    reach = [i for i in range(len(ops))]
    for i, op in enumerate(ops):
        for node in op._inbound_nodes:
            for tensor in node.input_tensors:
                j = index.get(id(tensor._keras_history[0]))
                if j is not None:
                    reach[j] = max(reach[j], i)
    cuts, furthest = [], 0
    for k, op in enumerate(ops):
        if furthest <= k:
            cuts.append(k)
        furthest = max(furthest, reach[k])
    cuts = [k for k in cuts if not isinstance(ops[k], (keras.layers.ZeroPadding2D, keras.layers.InputLayer))]

    def spatial(k):
        shape = ops[k].output.shape
        return shape[1] * shape[2] if len(shape) == 4 else 0

    ends = [k for a, k in enumerate(cuts[:-1]) if spatial(cuts[a + 1]) < 0.6 * spatial(k)]
    ends.append(len(ops) - 1)
    blocks, start = [], 0
    for end in ends:
        blocks.append(ops[start:end + 1])
        start = end + 1
    # merge weightless leading blocks (input / rescaling stages) into the next one
    merged: list[list] = []
    carry: list = []
    for members in blocks:
        if not any(getattr(op, "weights", None) for op in members):
            carry.extend(members)
            continue
        merged.append(carry + members)
        carry = []
    if carry:
        if merged:
            merged[-1].extend(carry)
        else:
            merged.append(carry)
    return [
        Block(i, members[-1].name, [op.name for op in members], tuple(members[-1].output.shape[1:]))
        for i, members in enumerate(merged)
    ]
