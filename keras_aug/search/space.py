"""What a search chooses: `num_sub_policies` sub-policies of `num_steps` (op, probability, level)
steps over a list of registry ops, the shape of AutoAugment's published policies (5 x 2 in the
paper's search, 25 x 2 once merged)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_aug.core.validation import check_integer
from keras_aug.policies.policy import Policy, PolicyOp
from keras_aug.policies.registry import OPS, SPACES, check_ops

# AutoAugment's search space (Cubuk et al. 2019, Table 1) without SamplePairing.
SEARCH_OPS = (
    "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "AutoContrast", "Invert",
    "Equalize", "Solarize", "Posterize", "Contrast", "Color", "Brightness", "Sharpness", "Cutout",
)


@dataclass(frozen=True)
class SearchSpace:
    """The policies a search may return: sub-policies of `num_steps` steps over `ops`.

    Args:
        ops: registry op names (`keras_aug.policies.OPS`) a step may use.
        num_sub_policies: sub-policies in one candidate policy.
        num_steps: steps per sub-policy.
        magnitude_bins: levels per op (10 in the paper); levels may be fractional.
        space: `"standard"` or `"wide"` magnitude ranges.

    Example:
        >>> space = SearchSpace(ops=("Rotate", "Invert"), num_sub_policies=2)
        >>> policy = space.sample(np.random.default_rng(0))
        >>> len(policy.sub_policies), len(policy.sub_policies[0])
        (2, 2)
    """

    ops: tuple[str, ...] = SEARCH_OPS
    num_sub_policies: int = 5
    num_steps: int = 2
    magnitude_bins: int = 10
    space: str = "standard"

    def __post_init__(self):
        object.__setattr__(self, "ops", check_ops("ops", self.ops))
        check_integer("num_sub_policies", self.num_sub_policies, 1)
        check_integer("num_steps", self.num_steps, 1)
        check_integer("magnitude_bins", self.magnitude_bins, 2)
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {list(SPACES)}, got {self.space!r}")

    @property
    def top_level(self) -> int:
        return self.magnitude_bins - 1

    def policy(self, steps, name: str = "", meta: dict | None = None) -> Policy:
        """A `Policy` from `num_sub_policies * num_steps` `(op index or name, p, level)` steps,
        row-major; levels are clipped to `[0, magnitude_bins - 1]`, p to `[0, 1]`."""
        steps = list(steps)
        expected = self.num_sub_policies * self.num_steps
        if len(steps) != expected:
            raise ValueError(f"steps: expected {expected} (op, p, level) steps, got {len(steps)}")
        made = []
        for op, p, level in steps:
            name_ = self.ops[int(op)] if not isinstance(op, str) else op
            if name_ not in self.ops:
                raise ValueError(f"steps: op {name_!r} is not in this space's ops {list(self.ops)}")
            magnitude = (float(np.clip(level, 0, self.top_level))
                         if OPS[name_].has_magnitude else None)
            made.append(PolicyOp(name_, float(np.clip(p, 0.0, 1.0)), magnitude))
        subs = tuple(tuple(made[i:i + self.num_steps])
                     for i in range(0, expected, self.num_steps))
        return Policy(subs, magnitude_bins=self.magnitude_bins, space=self.space, name=name,
                      meta=meta)

    def policy_from_sub_policies(self, sub_policies, name: str = "") -> Policy:
        """A `Policy` of any number of this space's sub-policies (a merged search result)."""
        return Policy(tuple(tuple(sub) for sub in sub_policies),
                      magnitude_bins=self.magnitude_bins, space=self.space, name=name)

    def sample(self, rng: np.random.Generator, name: str = "") -> Policy:
        """A uniformly random policy of this space (ops uniform, p and level uniform)."""
        n = self.num_sub_policies * self.num_steps
        return self.policy(zip(rng.integers(0, len(self.ops), n), rng.uniform(0, 1, n),
                               rng.uniform(0, self.top_level, n)), name=name)

    def suggest(self, trial, prefix: str = "") -> Policy:
        """An Optuna trial's policy: categorical op, uniform p and level per step."""
        steps = []
        for i in range(self.num_sub_policies):
            for j in range(self.num_steps):
                key = f"{prefix}{i}_{j}"
                steps.append((trial.suggest_categorical(f"op{key}", list(self.ops)),
                              trial.suggest_float(f"p{key}", 0.0, 1.0),
                              trial.suggest_float(f"level{key}", 0.0, float(self.top_level))))
        return self.policy(steps)

    def layer(self, seed: int | None = None, **kwargs):
        """One `AutoAugment` over these ops whose table any policy of this space can replace
        (`layer.policy = candidate`: no retrace, no recompile)."""
        from keras_aug.layers import AutoAugment

        first = self.policy([(0, 0.0, 0.0)] * (self.num_sub_policies * self.num_steps))
        return AutoAugment(first, ops=list(self.ops), seed=seed, **kwargs)

    def to_dict(self) -> dict:
        return {"ops": list(self.ops), "num_sub_policies": self.num_sub_policies,
                "num_steps": self.num_steps, "magnitude_bins": self.magnitude_bins,
                "space": self.space}
