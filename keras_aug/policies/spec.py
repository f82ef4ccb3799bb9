"""Policy strings -> layers: timm-style specs ("rand-m9-n2-mstd0.5", "augmix-m3-w3-d-1"), names
("trivialaugment", "autoaugment-cifar10") and policy JSON files. `kaug preview --policy` uses this."""
from __future__ import annotations

import os
import re

_PAIR = re.compile(r"-([a-z]+)(-?\d+(?:\.\d+)?)")

_RAND_KEYS = {"m": "magnitude", "n": "num_ops", "mstd": "magnitude_std", "mmax": "magnitude_max",
              "inc": "increasing", "p": "p"}
_AUGMIX_KEYS = {"m": "severity", "w": "width", "d": "depth", "a": "alpha", "p": "p"}
_AUTO = ("imagenet", "cifar10", "svhn")
_TRIVIAL = ("trivialaugment", "trivialaugmentwide", "trivialaugment-wide", "ta_wide")

EXAMPLES = ("rand-m9-n2-mstd0.5", "trivialaugment", "autoaugment-cifar10", "augmix-m3-w3-d-1",
            "path/to/policy.json")


def _parse_pairs(spec: str, prefix: str, keys: dict) -> dict:
    rest = spec[len(prefix):]
    out = {}
    pos = 0
    for match in _PAIR.finditer(rest):
        if match.start() != pos:
            break
        key, value = match.group(1), match.group(2)
        if key not in keys:
            raise ValueError(
                f"policy spec {spec!r}: unknown key {key!r}; expected one of {sorted(keys)}"
            )
        out[keys[key]] = float(value)
        pos = match.end()
    if pos != len(rest):
        raise ValueError(
            f"policy spec {spec!r}: cannot parse {rest[pos:]!r}; expected '-<key><number>' parts "
            f"with keys {sorted(keys)}"
        )
    return out


def parse_rand_spec(spec: str) -> dict:
    """timm's RandAugment string -> RandAugment keyword arguments.

    "rand-m9-n2-mstd0.5-mmax10-inc1": m magnitude (0-10), n ops, mstd magnitude noise, mmax clip.
    `inc` is accepted for compatibility; magnitudes here always increase strength (timm's inc1).

    Args:
        spec: the string, starting with `"rand"`.

    Example:
        >>> parse_rand_spec("rand-m9-n2-mstd0.5")
        {'magnitude': 9.0, 'num_ops': 2, 'magnitude_std': 0.5}
    """
    if not isinstance(spec, str) or not spec.startswith("rand"):
        raise ValueError(f"a RandAugment spec must start with 'rand', got {spec!r}")
    args = _parse_pairs(spec, "rand", _RAND_KEYS)
    args.pop("increasing", None)
    if "num_ops" in args:
        if not args["num_ops"].is_integer():
            raise ValueError(f"policy spec {spec!r}: n must be an integer, got {args['num_ops']}")
        args["num_ops"] = int(args["num_ops"])
    else:
        args["num_ops"] = 2
    return args


def parse_augmix_spec(spec: str) -> dict:
    """timm's AugMix string -> AugMix keyword arguments: "augmix-m3-w3-d-1-a1" (severity m,
    width w, depth d with -1 = random 1-3, alpha a).

    Args:
        spec: the string, starting with `"augmix"`.

    Example:
        >>> parse_augmix_spec("augmix-m3-w3-d-1-a1")
        {'severity': 3, 'width': 3, 'depth': -1, 'alpha': 1.0}
    """
    if not isinstance(spec, str) or not spec.startswith("augmix"):
        raise ValueError(f"an AugMix spec must start with 'augmix', got {spec!r}")
    args = _parse_pairs(spec, "augmix", _AUGMIX_KEYS)
    for key in ("severity", "width", "depth"):
        if key in args:
            if not args[key].is_integer():
                raise ValueError(f"policy spec {spec!r}: {key} must be an integer, got {args[key]}")
            args[key] = int(args[key])
    return args


def from_spec(spec: str, **kwargs):
    """A policy layer from a spec string or a policy JSON path (extra kwargs go to the layer).

    Examples: "rand-m9-n2-mstd0.5" -> RandAugment, "trivialaugment" -> TrivialAugmentWide,
    "autoaugment-cifar10" (also -imagenet, -svhn; plain "autoaugment" = imagenet) -> AutoAugment,
    "augmix-m3-w3-d-1" -> AugMix, "my_policy.json" -> AutoAugment(policy=that file).

    Args:
        spec: the spec string or JSON path (what `kaug preview --policy` takes).
        **kwargs: passed to the layer, e.g. `seed=0`, `jit_compile=False`.

    Example:
        >>> type(from_spec("rand-m9-n2-mstd0.5")).__name__, type(from_spec("trivialaugment")).__name__
        ('RandAugment', 'TrivialAugmentWide')
        >>> layer = from_spec("autoaugment-svhn", seed=0)
    """
    from keras_aug.layers import policy as layers

    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"spec must be a string, got {type(spec).__name__}")
    spec = os.fspath(spec).strip()
    lowered = spec.lower()
    if lowered.endswith(".json") or os.path.isfile(spec):
        return layers.AutoAugment(policy=spec, **kwargs)
    if lowered.startswith("rand"):
        return layers.RandAugment(**{**parse_rand_spec(lowered), **kwargs})
    if lowered.startswith("augmix"):
        return layers.AugMix(**{**parse_augmix_spec(lowered), **kwargs})
    if lowered in _TRIVIAL:
        return layers.TrivialAugmentWide(**kwargs)
    if lowered == "autoaugment":
        return layers.AutoAugment("imagenet", **kwargs)
    if lowered.startswith("autoaugment-") and lowered[len("autoaugment-"):] in _AUTO:
        return layers.AutoAugment(lowered[len("autoaugment-"):], **kwargs)
    raise ValueError(
        f"unknown policy spec {spec!r}; examples: {', '.join(EXAMPLES)}"
    )
