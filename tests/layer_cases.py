"""One way to build every public layer, shared by the tests that walk `keras_aug.layers.__all__`
(test_conformance, test_live, test_compilation). A new layer is covered by being exported; only
one whose defaults cannot be built, or show no effect, needs an entry here."""
import keras_aug.layers as L

K = 5  # classes of the mixing layers' labels

# Constructor arguments for layers that need some (the others run with their defaults).
ARGS = {
    "CenterCrop": dict(height=12, width=10),
    "RandomCrop": dict(height=12, width=10),
    "RandomResizedCrop": dict(height=12, width=10),
    "RandomAffine": dict(rotation=0.1, translate_x=0.1, zoom_y=0.1, shear_x=0.1),
    "RandomRotation": dict(factor=0.2),
    "RandomTranslation": dict(height_factor=0.2, width_factor=0.2),
    "RandomZoom": dict(height_factor=0.2),
    "RandomShear": dict(x_factor=0.2, y_factor=0.2),
    "RandomColorJitter": dict(value_range=(0, 255), brightness_factor=0.2, contrast_factor=0.2,
                              saturation_factor=(0.3, 0.7), hue_factor=0.1),
    "MixUp": dict(num_classes=K),
    "CutMix": dict(num_classes=K),
    "RandomMixing": dict(num_classes=K),
}
# Layers made of layers: built fresh each time (a layer instance belongs to one composition).
COMPOSITES = {
    "Pipeline": lambda **kw: L.Pipeline([L.RandomResizedCrop(12, 10), L.RandomFlip(),
                                         L.RandomAffine(rotation=0.1), L.RandomBrightness(0.3),
                                         L.RandomCutout(0.3)], **kw),
    "RandomApply": lambda **kw: L.RandomApply(L.RandomRotation(0.2), rate=0.7, **kw),
    "RandomChoice": lambda **kw: L.RandomChoice([L.RandomInvert(), L.RandomBrightness(0.3)],
                                                **kw),
    "RandomOrder": lambda **kw: L.RandomOrder([L.RandomRotation(0.2), L.RandomZoom(0.2)], **kw),
}
# Exported names that are not augmentation layers, with where they are tested instead.
NOT_LAYERS = {"PuzzleMixModel": "a training wrapper (keras.Model): tests/test_puzzlemix.py"}
MIXING = {"MixUp", "CutMix", "RandomMixing"}
# Crops change the image size, so at inference they still crop, deterministically (as Keras'
# crops do): output (height, width) of each.
CROPS = {"CenterCrop": (12, 10), "RandomCrop": (12, 10), "RandomResizedCrop": (12, 10),
         "Pipeline": (12, 10)}
EXACT_CROPS = {"CenterCrop", "RandomCrop"}  # an exact centre slice at inference
POLICIES = {"AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix"}


def layer_names() -> list[str]:
    return [name for name in L.__all__ if name not in NOT_LAYERS]


def make_layer(name: str, **kwargs):
    """A fresh instance of layer `name`; kwargs (seed=, p=, ...) go to its constructor."""
    if name in COMPOSITES:
        return COMPOSITES[name](**kwargs)
    return getattr(L, name)(**{**ARGS.get(name, {}), **kwargs})
