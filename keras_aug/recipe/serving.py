"""`export_classifier`: a SavedModel that serves raw images and answers with class names.

Training feeds a model uint8 images already resized by the folder loader; a user serving it has
photos of any size, or their JPEG/PNG bytes. The exported endpoints do the loader's work inside
the graph with the same functions (`keras_aug.data.images.decode_image`, `keras_aug.data.resize_images`), so the
served model sees the pixels it was trained on, with augmentation off (`training=False`).

Endpoints (TensorFlow Serving signatures of the same names):
- `serve` (also `serving_default`): `images` uint8 `[batch, height, width, channels]`, any height
  and width -> `{"probabilities": float32 [batch, K], "class": string [batch]}`.
- `serve_encoded`: `encoded` string `[batch]` of JPEG/PNG/GIF/BMP/WebP bytes -> the same outputs.
- `class_names`: no input -> string `[K]`, the class names in label order.

The class names are also written, one per line, to `PATH/assets.extra/class_names.txt` (the
SavedModel folder TensorFlow Serving keeps for files the graph does not read), for tools that do
not load TensorFlow.
"""
from __future__ import annotations

import os
from typing import Sequence

import keras
import tensorflow as tf

from keras_aug.core.validation import check_choice
from keras_aug.data.images import check_channels, check_image_size, decode_image, resize_images

OUTPUTS = ("auto", "logits", "probabilities")
CLASS_NAMES_FILE = os.path.join("assets.extra", "class_names.txt")


def export_classifier(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    channels: int,
    outputs: str = "auto",
) -> str:
    """Write `model` as a SavedModel whose `serve` takes raw uint8 images of any size.

    Inside, images are resized to `image_size` with `resize_images` (what the folder loader
    does), cast to float32 0..255 (the model's own first layers scale them), run with
    `training=False` and turned into class probabilities and the most probable class name.
    See the module docstring for the endpoints and where the class names are kept.

    Args:
        model: a classifier taking float32 `(batch, *image_size, channels)` in 0..255 and
            returning `(batch, K)` logits or probabilities.
        path: the SavedModel directory to write.
        class_names: the K class names in label order (`LabeledImages.class_names`).
        image_size: `(height, width)` the model was trained at.
        channels: 1 or 3, as the model was trained; `serve` takes exactly this many.
        outputs: `"logits"` (served probabilities are their softmax), `"probabilities"` (served as
            they are) or `"auto"`: probabilities when the model's last layer is a softmax,
            logits when it is linear, otherwise an error asking for this argument.

    Returns:
        `path`, as a string.

    Example:
        >>> import tempfile
        >>> model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Rescaling(1 / 255),
        ...                           keras.layers.Flatten(), keras.layers.Dense(2)])
        >>> path = export_classifier(model, tempfile.mkdtemp(), class_names=["cat", "dog"],
        ...                          image_size=(8, 8), channels=1)
        >>> served = tf.saved_model.load(path)
        >>> served.serve(tf.zeros((3, 20, 30, 1), tf.uint8))["class"].shape
        TensorShape([3])
        >>> served.class_names().numpy().tolist()
        [b'cat', b'dog']
    """
    names = _check_class_names(class_names)
    height, width = check_image_size(image_size)
    channels = check_channels(channels)
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    check_choice("outputs", outputs, OUTPUTS)
    kind = _output_kind(model) if outputs == "auto" else outputs
    _check_model(model, (height, width, channels), len(names))
    names_tensor = tf.constant(names)

    def classify(pixels):  # uint8 (batch, height, width, channels) at image_size
        scores = tf.cast(model(tf.cast(pixels, tf.float32), training=False), tf.float32)
        probabilities = tf.nn.softmax(scores) if kind == "logits" else scores
        return {"probabilities": probabilities, "class": tf.gather(names_tensor, tf.argmax(probabilities, -1))}

    def serve(images):
        return classify(resize_images(images, (height, width)))

    def serve_encoded(encoded):
        def decode(data):
            return resize_images(decode_image(data, channels), (height, width))

        spec = tf.TensorSpec((height, width, channels), tf.uint8)
        return classify(tf.map_fn(decode, encoded, fn_output_signature=spec))

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint is also exported as "serving_default".
    archive.add_endpoint("serve", serve, [tf.TensorSpec((None, None, None, channels), tf.uint8, name="images")])
    archive.add_endpoint("serve_encoded", serve_encoded, [tf.TensorSpec((None,), tf.string, name="encoded")])
    archive.add_endpoint("class_names", lambda: names_tensor, [])
    path = os.fspath(path)
    archive.write_out(path, verbose=False)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, CLASS_NAMES_FILE), "w", encoding="utf-8") as file:
        file.write("".join(f"{name}\n" for name in names))
    return path


def _check_class_names(class_names) -> list[str]:
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of strings, got {type(class_names).__name__}")
    names = list(class_names)
    bad = [name for name in names if not isinstance(name, str) or not name or "\n" in name]
    if bad or len(names) < 2 or len(set(names)) != len(names):
        raise ValueError("class_names must be at least 2 distinct non-empty strings without newlines, "
                         f"got {names!r}")
    return names


def _output_kind(model: keras.Model) -> str:
    """"probabilities" if the model ends in a softmax, "logits" if it ends linear."""
    layer = model
    while isinstance(layer, keras.Model) and layer.layers:  # a nested model: its own last layer
        layer = layer.layers[-1]
    activation = getattr(layer, "activation", None)
    if isinstance(layer, keras.layers.Softmax) or activation is keras.activations.softmax:
        return "probabilities"
    if activation is keras.activations.linear:
        return "logits"
    raise ValueError(
        f"Cannot tell whether the outputs of model {model.name!r} are logits or probabilities "
        f"(its last layer {layer.name!r} is {type(layer).__name__} with activation "
        f"{getattr(activation, '__name__', activation)!r}); pass outputs='logits' or outputs='probabilities'."
    )


def _check_model(model: keras.Model, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """The model declares (Functional, Sequential) and takes `input_shape`, returns `(1, num_classes)`."""
    accepts = f"model does not accept images of shape (batch, {', '.join(map(str, input_shape))}) (image_size and channels)"
    declared = model.input_shape if getattr(model, "inputs", None) else None  # subclassed: none
    if isinstance(declared, tuple) and len(declared) == 4 and any(
            dim not in (None, want) for dim, want in zip(declared[1:], input_shape)):
        raise ValueError(f"{accepts}: it was built for {declared}.")
    try:
        result = model(tf.zeros((1, *input_shape), tf.float32), training=False)
    except Exception as err:  # Keras raises many types for an input it does not accept
        raise ValueError(f"{accepts}: {err}") from err
    if not tf.is_tensor(result) or result.shape.rank != 2:
        raise ValueError(f"model must return one (batch, classes) tensor, got {result!r:.200}")
    if result.shape[-1] != num_classes:
        raise ValueError(f"class_names has {num_classes} names but the model returns {result.shape[-1]} "
                         "outputs per image; pass one name per output, in label order.")
