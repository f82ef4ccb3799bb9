"""One constructor per public layer, shared by the tests that walk `keras_aug.layers.__all__`."""
import keras_aug.layers as L

# Layers whose defaults cannot be constructed, or whose defaults are too weak to show an effect.
ARGS = {
    "CenterCrop": lambda: L.CenterCrop(12, 12),
    "RandomCrop": lambda: L.RandomCrop(12, 12),
    "RandomResizedCrop": lambda: L.RandomResizedCrop(12, 12),
    "RandomAffine": lambda: L.RandomAffine(rotation=0.1, translate_x=0.1, zoom_y=0.1,
                                           shear_x=0.1),
    "RandomRotation": lambda: L.RandomRotation(0.2),
    "RandomTranslation": lambda: L.RandomTranslation(0.2, 0.2),
    "RandomZoom": lambda: L.RandomZoom(0.2),
    "RandomShear": lambda: L.RandomShear(0.2, 0.2),
    "RandomColorJitter": lambda: L.RandomColorJitter((0, 255), 0.2, 0.2, (0.3, 0.7), 0.1),
    "MixUp": lambda: L.MixUp(num_classes=4),
    "CutMix": lambda: L.CutMix(num_classes=4),
    "RandomMixing": lambda: L.RandomMixing(num_classes=4),
    "Pipeline": lambda: L.Pipeline([L.RandomResizedCrop(12, 12), L.RandomFlip(),
                                    L.RandomAffine(rotation=0.1), L.RandomBrightness(0.3),
                                    L.RandomCutout(0.3)]),
    "RandomApply": lambda: L.RandomApply(L.RandomRotation(0.2), rate=0.7),
    "RandomChoice": lambda: L.RandomChoice([L.RandomInvert(), L.RandomBrightness(0.3)]),
    "RandomOrder": lambda: L.RandomOrder([L.RandomRotation(0.2), L.RandomZoom(0.2)]),
}
NOT_LAYERS = {"PuzzleMixModel"}  # a Model wrapper, not an augmentation layer
MIXING = {"MixUp", "CutMix", "RandomMixing"}
CROPS = {"CenterCrop", "RandomCrop", "RandomResizedCrop", "Pipeline"}  # Pipeline: it holds one
POLICIES = {"AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix"}


def layer_names() -> list[str]:
    return [name for name in L.__all__ if name not in NOT_LAYERS]


def make_layer(name: str, **kwargs):
    """A fresh instance of layer `name` (extra kwargs such as seed= go to the constructor)."""
    if name in ARGS and not kwargs:
        return ARGS[name]()
    if name in ARGS:
        layer = ARGS[name]()
        config = layer.get_config()
        config.pop("name", None)
        return type(layer).from_config({**config, **kwargs})
    return getattr(L, name)(**kwargs)
