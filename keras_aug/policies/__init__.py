"""Augmentation policies as data: the op registry, published tables, policy files and specs.

- `registry`: name -> op kind and the magnitude -> parameter mapping (one place).
- `tables`: AutoAugment's ImageNet / CIFAR10 / SVHN sub-policies.
- `Policy`: a policy as data with JSON round trip and validation.
- `fused.apply_op_sequence`: per-sample op sequences applied with one warp.
- `from_spec`: "rand-m9-n2-mstd0.5", "trivialaugment", "autoaugment-cifar10", "augmix-m3-w3-d-1"
  or a policy JSON path -> a layer.
- `JSDConsistencyLoss`, `AugMixViews`: AugMix's Jensen-Shannon consistency training.
The layers live in `keras_aug.layers` (AutoAugment, RandAugment, TrivialAugmentWide, AugMix).
"""
from keras_aug.policies.jsd import AugMixViews, JSDConsistencyLoss
from keras_aug.policies.policy import Policy, PolicyOp, builtin_policy, resolve_policy
from keras_aug.policies.registry import OPS, OpSpec, op_parameter
from keras_aug.policies.spec import from_spec, parse_augmix_spec, parse_rand_spec

__all__ = [
    "AugMixViews",
    "JSDConsistencyLoss",
    "OPS",
    "OpSpec",
    "Policy",
    "PolicyOp",
    "builtin_policy",
    "from_spec",
    "op_parameter",
    "parse_augmix_spec",
    "parse_rand_spec",
    "resolve_policy",
]
