"""Benchmark: keras_aug layers vs Keras' own (and albumentations where installed), same run.

    python benchmarks/layers.py [--sizes 32 224] [--only NAME ...] [--passes 3] [--batches N]
                                [--kerasaug-python PATH] [--no-compiled]

Prints img/s in a tf.data pipeline and inside a compiled step, and the ratio ours/peer per layer.
The tf.data passes of ours, Keras and (with `--kerasaug-python`, the python of a second virtual
environment with KerasAug 1.1.1, PyPI `keras-aug`, which also imports as `keras_aug`) KerasAug
alternate, one pass each in turn, so all see the same machine load; KerasAug runs in
`kerasaug_worker.py` under that python. Without the option the KerasAug column is left out.
Cases live in `CASES` below, grouped by family; each family's owner adds its rows there.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    Case,
    KerasAugPeer,
    albumentations_throughput,
    format_rate,
    model_step_throughput,
    pipeline_throughput,
    ratio,
    sample_images,
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_aug.layers as L  # noqa: E402
from mixing import keras_dict_call  # noqa: E402

try:
    import albumentations as A
except ImportError:  # optional peer: pip install kaug[bench]
    A = None


class _Sized:
    """Builds a size-dependent transform (crops) on first use, from the image size it sees."""

    def __init__(self, factory):
        self.factory, self.built = factory, None

    def __call__(self, *args, **kwargs):
        if self.built is None:  # a (B, H, W, C) batch, or albumentations' image=(H, W, C)
            size = kwargs["image"].shape[0] if "image" in kwargs else args[0].shape[1]
            self.built = self.factory(int(size))
        return self.built(*args, **kwargs)


def _crop(size: int) -> int:
    return size * 7 // 8


class _RotationV3(L.RandomRotation):
    """RandomRotation resampled by ImageProjectiveTransformV3 (no XLA kernel, so not compiled)."""

    jit_compile = False

    def augment_images(self, images, params):
        from keras_aug.ops.geometry import _warp_v3

        return _warp_v3(images, params["matrix"], self.interpolation, self.fill_mode,
                        self.fill_value)


def _resampler_choice(gather: float | None, v3: float | None) -> str:
    if gather is None or v3 is None:
        return "Resampler: could not measure both."
    verdict = ("keeping the gather resampler (XLA-compiled, also usable inside jit_compile=True "
               "models)" if gather >= v3 else
               "ImageProjectiveTransformV3 is faster here, but it has no XLA kernel, so the "
               "layers keep the gather resampler (they must compile under jit_compile=True)")
    return (f"Resampler in tf.data: gather+XLA {gather:,.0f} img/s vs ImageProjectiveTransformV3 "
            f"{v3:,.0f} img/s ({gather / v3:.1f}×): {verdict}.")


class _ResizedCropWarp(L.RandomResizedCrop):
    """RandomResizedCrop through the 2-D bilinear `warp` (its previous path; output size = input
    size only), to time the separable resize against it."""

    def _crop(self, images, boxes, interpolation):
        from keras_aug.ops.geometry import warp

        top, left, box_h, box_w = tf.unstack(boxes, axis=1)
        sy, sx = box_h / self.height, box_w / self.width
        zeros = tf.zeros_like(sx)
        matrices = tf.reshape(tf.stack([sx, zeros, left + 0.5 * sx - 0.5, zeros, sy,
                                        top + 0.5 * sy - 0.5, zeros, zeros, zeros + 1.0], axis=1),
                              [-1, 3, 3])
        return warp(images, matrices, interpolation, "nearest")


def _resized_crop_choice(separable: float | None, warp: float | None) -> str:
    if separable is None or warp is None:
        return "RandomResizedCrop resampler: could not measure both."
    return (f"RandomResizedCrop in tf.data: separable resize {separable:,.0f} img/s vs 2-D warp "
            f"{warp:,.0f} img/s ({separable / warp:.2f}×).")


# --- geometry (besides RandomFlip above): Keras' defaults fill_mode="reflect" on both sides.
GEOMETRY_CASES = [
    Case("RandomRotation", lambda: L.RandomRotation(0.1), lambda: keras.layers.RandomRotation(0.1),
         (lambda: A.Rotate(limit=36, border_mode=4, p=1.0)) if A else None, goal=3.0,
         kerasaug="RandomRotation(36, padding_mode='reflect')"),
    Case("RandomRotation resampler: gather+XLA vs ImageProjectiveTransformV3",
         lambda: L.RandomRotation(0.1), lambda: _RotationV3(0.1, name="rotation_v3"),
         note=_resampler_choice),
    Case("RandomAffine rot+shear+trans+zoom vs 4 Keras layers",
         lambda: L.RandomAffine(rotation=0.1, translate_x=0.1, translate_y=0.1, zoom_y=0.1,
                                shear_x=0.1, shear_y=0.1),
         lambda: keras.Sequential([keras.layers.RandomRotation(0.1),
                                   keras.layers.RandomShear(0.1, 0.1),
                                   keras.layers.RandomTranslation(0.1, 0.1),
                                   keras.layers.RandomZoom(0.1)]),
         (lambda: A.Affine(scale=(0.9, 1.1), translate_percent=(-0.1, 0.1), rotate=(-36, 36),
                           shear=(-5.7, 5.7), border_mode=4, p=1.0)) if A else None, goal=10.0,
         kerasaug="RandomAffine(36, (0.1, 0.1), (0.9, 1.1), (-5.7, 5.7, -5.7, 5.7), "
                  "padding_mode='reflect')"),
    Case("RandomTranslation", lambda: L.RandomTranslation(0.1, 0.1),
         lambda: keras.layers.RandomTranslation(0.1, 0.1), goal=1.5,
         kerasaug="RandomAffine(translate=(0.1, 0.1), padding_mode='reflect')"),
    Case("RandomZoom", lambda: L.RandomZoom(0.1), lambda: keras.layers.RandomZoom(0.1), goal=1.5,
         kerasaug="RandomAffine(scale=(0.9, 1.1), padding_mode='reflect')"),
    Case("RandomShear", lambda: L.RandomShear(0.1, 0.1), lambda: keras.layers.RandomShear(0.1, 0.1),
         goal=1.5,
         kerasaug="RandomAffine(shear=(-5.7, 5.7, -5.7, 5.7), padding_mode='reflect')"),
    Case("RandomPerspective", lambda: L.RandomPerspective(0.5),
         lambda: keras.layers.RandomPerspective(factor=1.0, scale=0.5),
         (lambda: A.Perspective(scale=(0.05, 0.1), p=1.0)) if A else None, goal=1.5),
    Case("RandomCrop (7/8 side)", lambda: _Sized(lambda s: L.RandomCrop(_crop(s), _crop(s))),
         lambda: _Sized(lambda s: keras.layers.RandomCrop(_crop(s), _crop(s))),
         (lambda: _Sized(lambda s: A.RandomCrop(_crop(s), _crop(s)))) if A else None, goal=1.5,
         kerasaug="RandomCrop(size * 7 // 8)"),
    Case("RandomResizedCrop (no Keras layer)",
         lambda: _Sized(lambda s: L.RandomResizedCrop(s, s)), None,
         (lambda: _Sized(lambda s: A.RandomResizedCrop((s, s)))) if A else None,
         kerasaug="RandomResizedCrop(size, antialias=False)"),
    Case("RandomResizedCrop resampler: separable vs 2-D warp",
         lambda: _Sized(lambda s: L.RandomResizedCrop(s, s)),
         lambda: _Sized(lambda s: _ResizedCropWarp(s, s, name="resized_crop_warp")),
         note=_resized_crop_choice),
    Case("CenterCrop (7/8 side)", lambda: _Sized(lambda s: L.CenterCrop(_crop(s), _crop(s))),
         lambda: _Sized(lambda s: keras.layers.CenterCrop(_crop(s), _crop(s))), goal=1.5,
         kerasaug="CenterCrop(size * 7 // 8)"),
]

CASES: list[Case] = [
    Case("cast only (ceiling)", lambda: (lambda x, training=True: x), kerasaug="Identity()"),
    # --- geometry
    Case("RandomFlip", lambda: L.RandomFlip("horizontal"),
         lambda: keras.layers.RandomFlip("horizontal"),
         (lambda: A.HorizontalFlip(p=0.5)) if A else None, goal=8.0,
         kerasaug="RandomFlip('horizontal', p=0.5)"),
    *GEOMETRY_CASES,
    # --- color
    Case("RandomBrightness", lambda: L.RandomBrightness(0.2),
         lambda: keras.layers.RandomBrightness(0.2),
         (lambda: A.RandomBrightnessContrast(0.2, 0.0, p=1.0)) if A else None, goal=1.5,
         kerasaug="ColorJitter(brightness=0.2)", range_dependent=True),
    Case("RandomContrast", lambda: L.RandomContrast(0.2),
         lambda: keras.layers.RandomContrast(0.2),
         (lambda: A.RandomBrightnessContrast(0.0, 0.2, p=1.0)) if A else None, goal=1.5,
         kerasaug="ColorJitter(contrast=0.2)", range_dependent=True),
    Case("RandomSaturation", lambda: L.RandomSaturation((0.3, 0.7)),
         lambda: keras.layers.RandomSaturation((0.3, 0.7)),
         (lambda: A.ColorJitter(0, 0, 0.4, 0, p=1.0)) if A else None, goal=1.5,
         kerasaug="ColorJitter(saturation=(0.6, 1.4))", range_dependent=True),
    Case("RandomHue", lambda: L.RandomHue(0.1),
         lambda: keras.layers.RandomHue(0.1),
         (lambda: A.HueSaturationValue(18, 0, 0, p=1.0)) if A else None, goal=1.5,
         kerasaug="ColorJitter(hue=0.05)", range_dependent=True),
    Case("RandomColorJitter",
         lambda: L.RandomColorJitter((0, 255), 0.2, 0.2, (0.3, 0.7), 0.1),
         lambda: keras.layers.RandomColorJitter((0, 255), 0.2, 0.2, (0.3, 0.7), 0.1),
         (lambda: A.ColorJitter(0.2, 0.2, 0.4, 0.05, p=1.0)) if A else None, goal=10.0,
         kerasaug="ColorJitter(0.2, 0.2, (0.6, 1.4), 0.05)", range_dependent=True),
    Case("RandomGrayscale", lambda: L.RandomGrayscale(p=0.5),
         lambda: keras.layers.RandomGrayscale(0.5),
         (lambda: A.ToGray(p=0.5)) if A else None, goal=1.5,
         kerasaug="RandomGrayscale(p=0.5)", range_dependent=True),
    Case("RandomInvert", lambda: L.RandomInvert(p=0.5),
         lambda: keras.layers.RandomInvert(),
         (lambda: A.InvertImg(p=0.5)) if A else None, goal=1.5,
         kerasaug="RandomInvert(p=0.5)", range_dependent=True),
    Case("RandomSolarize", lambda: L.RandomSolarize(threshold_factor=(0.5, 1.0)),
         lambda: keras.layers.Solarization(threshold_factor=(0.5, 1.0)),
         (lambda: A.Solarize(threshold_range=(0.5, 1.0), p=1.0)) if A else None, goal=1.5,
         kerasaug="RandomSolarize(0.75, p=1.0)", range_dependent=True),
    Case("RandomPosterize", lambda: L.RandomPosterize((4, 8)),
         lambda: keras.layers.RandomPosterization((4, 8)),
         (lambda: A.Posterize(num_bits=(4, 8), p=1.0)) if A else None, goal=1.5,
         kerasaug="RandomPosterize(6, p=1.0)", range_dependent=True),
    # Keras' Equalization/AutoContrast treat the whole batch alike; ours decide per sample (p).
    Case("RandomEqualize", lambda: L.RandomEqualize(),
         lambda: keras.layers.Equalization(),
         (lambda: A.Equalize(p=1.0)) if A else None, goal=1.0,
         kerasaug="RandomEqualize(p=1.0)", range_dependent=True),
    Case("RandomAutoContrast", lambda: L.RandomAutoContrast(),
         lambda: keras.layers.AutoContrast(),
         (lambda: A.AutoContrast(p=1.0)) if A else None, goal=1.0,
         kerasaug="RandomAutoContrast(p=1.0)", range_dependent=True),
    Case("RandomSharpness", lambda: L.RandomSharpness((0.25, 0.75)),
         lambda: keras.layers.RandomSharpness((0.25, 0.75)),
         (lambda: A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0)) if A else None,
         goal=1.5, kerasaug="RandomSharpen(1.5, p=1.0)", range_dependent=True),
    Case("RandomGaussianBlur (7x7)", lambda: L.RandomGaussianBlur((0.1, 2.0), kernel_size=7),
         lambda: keras.layers.RandomGaussianBlur(1.0, kernel_size=7, sigma=(0.1, 2.0)),
         (lambda: A.GaussianBlur(blur_limit=(7, 7), sigma_limit=(0.1, 2.0), p=1.0)) if A else None,
         goal=1.5, kerasaug="GaussianBlur(7, (0.1, 2.0))"),
    # --- erase
    # Keras' RandomErasing (fill_value=None) fills with per-pixel noise: compare mode="pixel".
    Case("RandomErasing (pixel noise)", lambda: L.RandomErasing(mode="pixel"),
         lambda: keras.layers.RandomErasing(),
         (lambda: A.Erasing(fill="random", p=1.0)) if A else None, goal=5.0,
         kerasaug="RandomErasing(p=1.0, value='random')"),
    Case("RandomErasing (constant, 1-3 boxes)", lambda: L.RandomErasing(max_boxes=3),
         lambda: keras.layers.RandomErasing(fill_value=0.0),
         (lambda: A.Erasing(p=1.0)) if A else None,
         kerasaug="RandomErasing(p=1.0, value=0.0)"),  # KerasAug erases one box
    Case("RandomCutout", lambda: L.RandomCutout(0.5), None,
         (lambda: A.CoarseDropout((1, 1), (0.5, 0.5), (0.5, 0.5), p=1.0)) if A else None),
    Case("GridMask", lambda: L.GridMask(), None,
         (lambda: A.GridDropout(ratio=0.5, p=1.0)) if A else None),
    # --- mix (more in benchmarks/mixing.py); one-hot labels, Keras' layers take a dict
    Case("MixUp", lambda: L.MixUp(alpha=0.2, num_classes=10),
         lambda: keras_dict_call(keras.layers.MixUp(0.2)), takes_labels=True,
         kerasaug="MixUp(alpha=0.2)"),
    Case("CutMix", lambda: L.CutMix(alpha=1.0, num_classes=10),
         lambda: keras_dict_call(keras.layers.CutMix(1.0)), takes_labels=True,
         kerasaug="CutMix(alpha=1.0)"),
    # --- policies: ours per sample and fused (one warp); Keras' RandAugment picks ops per batch
    # and computes all of them; albumentations' RandAugment-like SomeOf(n=2) over 14 ops, collated.
    Case("RandAugment N=2 M=9", lambda: L.RandAugment(2, 9),
         lambda: keras.layers.RandAugment(value_range=(0, 255), num_ops=2, factor=0.9),
         (lambda: A.SomeOf([
             A.NoOp(p=1.0), A.Affine(shear={"x": (-17, 17)}, p=1.0),
             A.Affine(shear={"y": (-17, 17)}, p=1.0),
             A.Affine(translate_percent={"x": (-0.45, 0.45)}, p=1.0),
             A.Affine(translate_percent={"y": (-0.45, 0.45)}, p=1.0),
             A.Affine(rotate=(-30, 30), p=1.0),
             A.RandomBrightnessContrast((-0.9, 0.9), (0, 0), p=1.0),
             A.RandomBrightnessContrast((0, 0), (-0.9, 0.9), p=1.0),
             A.ColorJitter(0, 0, (0.1, 1.9), 0, p=1.0), A.Sharpen(p=1.0),
             A.Posterize(4, p=1.0), A.Solarize(p=1.0), A.AutoContrast(p=1.0),
             A.Equalize(p=1.0)], n=2, p=1.0)) if A else None, goal=50.0,
         kerasaug="RandAugment(num_ops=2, magnitude=9)", range_dependent=True),
    Case("AugMix severity 3, width 3", lambda: L.AugMix(3, 3, -1),
         lambda: keras.layers.AugMix(value_range=(0, 255)), goal=3.0, keras_instances=5),
    Case("TrivialAugmentWide (no Keras layer)", lambda: L.TrivialAugmentWide(),
         kerasaug="TrivialAugmentWide()", range_dependent=True),
    Case("AutoAugment imagenet (no Keras layer)", lambda: L.AutoAugment("imagenet")),
    Case("AutoAugment cifar10 (no Keras layer)", lambda: L.AutoAugment("cifar10")),
]

SETTINGS = {32: (256, 40), 224: (64, 8)}  # size -> (batch, batches per pass)


def interleaved_pipeline_rates(case: Case, ours, images, batch: int, batches: int, rounds: int,
                               kerasaug: KerasAugPeer | None) -> tuple:
    """tf.data img/s of ours, Keras and KerasAug: one pass each in turn, `rounds` times, medians.

    Alternating pass by pass exposes all three to the same machine load. A Keras layer with
    `keras_instances > 1` gets a fresh layer each round (at least that many rounds).
    """
    has_keras = case.keras is not None
    has_kerasaug = kerasaug is not None and case.kerasaug is not None
    keras_layer = case.keras() if has_keras and case.keras_instances == 1 else None
    rounds = max(rounds, case.keras_instances) if has_keras else rounds
    rates = {"ours": [], "keras": [], "kerasaug": []}
    for _ in range(rounds):
        rates["ours"].append(pipeline_throughput(ours, images, batch, batches, 1,
                                                 case.takes_labels))
        if has_keras:
            rates["keras"].append(pipeline_throughput(keras_layer or case.keras(), images, batch,
                                                      batches, 1, case.takes_labels))
        if has_kerasaug:
            rates["kerasaug"].append(kerasaug.throughput(case, images, batch, batches))
    return tuple(None if not r or None in r else float(np.median(r)) for r in rates.values())


def _start_kerasaug(python: str | None) -> KerasAugPeer | None:
    """The KerasAug worker, or None (with the reason printed) so the column is left out."""
    if python is None:
        print("KerasAug column skipped: pass --kerasaug-python PATH (the python of a virtual "
              "environment with `pip install keras-aug`; it cannot share ours).")
        return None
    if not os.path.exists(python):
        print(f"KerasAug column skipped: --kerasaug-python {python} does not exist.")
        return None
    try:
        peer = KerasAugPeer(python)
    except RuntimeError as error:
        print(f"KerasAug column skipped: {error}")
        return None
    print(f"KerasAug {peer.version} from {python}: its own process, passes interleaved with ours.")
    return peer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batches", type=int, help="batches per pass (default: per size)")
    parser.add_argument("--kerasaug-python", metavar="PATH",
                        help="python of a virtual environment with KerasAug (PyPI keras-aug) for "
                             "a KerasAug column; skipped when absent")
    parser.add_argument("--no-compiled", action="store_true",
                        help="skip the compiled-step columns (faster)")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only or c.name.startswith("cast")]
    kerasaug = _start_kerasaug(args.kerasaug_python)
    try:
        for size in args.sizes:
            batch, batches = SETTINGS.get(size, (64, 8))
            _table(cases, size, batch, args.batches or batches, args.passes, kerasaug,
                   compiled=not args.no_compiled)
    finally:
        if kerasaug is not None:
            kerasaug.close()


def _table(cases, size: int, batch: int, batches: int, passes: int,
           kerasaug: KerasAugPeer | None, compiled: bool) -> None:
    images = sample_images(size, batch * 4)
    print(f"\n## {size}x{size}, batch {batch}: images/second (median of {passes} passes"
          f"{', tf.data passes interleaved' if kerasaug else ''})\n")
    ka_head, ka_rule = ("| kerasaug tf.data | ratio ", "|---|---") if kerasaug else ("", "")
    print(f"| layer | ours tf.data | keras tf.data | ratio {ka_head}| albumentations | ratio "
          "| ours compiled step | keras compiled step | ratio | goal |")
    print(f"|---|---|---|---{ka_rule}|---|---|---|---|---|---|")
    notes = []
    for case in cases:
        ours = case.ours()
        r_ours, r_keras, r_ka = interleaved_pipeline_rates(case, ours, images, batch, batches,
                                                           passes, kerasaug)
        s_ours = s_keras = r_albu = None
        step = compiled and not case.takes_labels  # the compiled step has no labels
        if step:
            s_ours = model_step_throughput(ours, images, batch, batches, passes)
            if case.keras is not None:
                s_keras = model_step_throughput(case.keras(), images, batch, batches, passes)
        if case.albumentations is not None:
            r_albu = albumentations_throughput(case.albumentations(), images, batch, batches,
                                               passes)
        goal = f"≥ {case.goal:g}× keras" if case.goal else ""
        has_keras, has_albu = case.keras is not None, case.albumentations is not None
        ka = (f"{format_rate(r_ka, case.kerasaug is not None)} | {ratio(r_ours, r_ka)} | "
              if kerasaug else "")
        print(f"| {case.name} | {format_rate(r_ours)} | {format_rate(r_keras, has_keras)} | "
              f"{ratio(r_ours, r_keras)} | {ka}{format_rate(r_albu, has_albu)} | "
              f"{ratio(r_ours, r_albu)} | {format_rate(s_ours, step)} | "
              f"{format_rate(s_keras, step and has_keras)} | {ratio(s_ours, s_keras)} | "
              f"{goal} |", flush=True)
        if case.note is not None:
            notes.append(case.note(r_ours, r_keras))
    if kerasaug is not None:
        notes.append("KerasAug: float32 [0, 1] images from the cache (no cast) for the layers whose "
                     "output depends on the value range, else the same uint8 -> float32 pipeline "
                     "as ours; ops that KerasAug applies per batch stay per batch.")
        notes += [f"KerasAug {spec} failed: {error}" for spec, error in kerasaug.errors.items()]
        kerasaug.errors.clear()
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
