"""Policies as data: a list of sub-policies, each a short sequence of (op, probability, level).

The JSON form (what `Policy.save` writes and the policy search writes for `AutoAugment`):

    {"kaug_policy": 1, "name": "autoaugment-cifar10", "magnitude_bins": 10, "space": "standard",
     "sub_policies": [[{"op": "Invert", "p": 0.1, "magnitude": null},
                       {"op": "Contrast", "p": 0.2, "magnitude": 6}], ...]}

`magnitude` is a level in [0, magnitude_bins - 1] (fractional levels are allowed, e.g. from a
search); it is normalized to m = level / (magnitude_bins - 1) and mapped to the op's parameter by
`registry.op_parameter`. `[op, p, magnitude]` lists are accepted in place of the dicts.
"""
from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass, field

from keras_aug.core.validation import check_integer
from keras_aug.policies.registry import OPS, SPACES
from keras_aug.policies.tables import AUTOAUGMENT_BINS, AUTOAUGMENT_TABLES

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PolicyOp:
    """One step of a sub-policy: apply `op` with probability `p` at level `magnitude`.

    Attributes:
        op: a registry op name (`keras_aug.policies.OPS`).
        p: probability in [0, 1] that the step applies.
        magnitude: level in `[0, magnitude_bins - 1]` of the policy; `None` for ops without one.

    Example:
        >>> PolicyOp("Rotate", p=0.7, magnitude=2)
        PolicyOp(op='Rotate', p=0.7, magnitude=2)
    """

    op: str
    p: float
    magnitude: float | None = None


@dataclass(frozen=True)
class Policy:
    """An AutoAugment-style policy: each image draws one sub-policy and applies its steps in order.

    Policies are data: `to_dict`/`from_dict`, `to_json`/`from_json`, `save`/`load` round-trip
    the JSON form `{"kaug_policy": 1, "magnitude_bins": 10, "space": "standard",
    "sub_policies": [[{"op": ..., "p": ..., "magnitude": ...}, ...], ...]}`; invalid entries raise
    `ValueError` naming the source and the entry. `AutoAugment(policy=...)` runs one.

    Attributes:
        sub_policies: tuples of `PolicyOp` steps.
        magnitude_bins: number of magnitude levels (10 in the AutoAugment paper).
        space: `"standard"` or `"wide"` (TrivialAugmentWide's larger ranges).
        name: label used in messages.
        meta: free-form provenance saved with the policy (a search records its command line,
            scores and wall time here); not compared by `==`.

    Example:
        >>> policy = Policy(((PolicyOp("Invert", 0.1), PolicyOp("Rotate", 0.7, 2)),))
        >>> Policy.from_json(policy.to_json()) == policy
        True
        >>> layer = keras_aug.layers.AutoAugment(policy, seed=0, jit_compile=False)
    """

    sub_policies: tuple[tuple[PolicyOp, ...], ...]
    magnitude_bins: int = AUTOAUGMENT_BINS
    space: str = "standard"
    name: str = ""
    meta: dict | None = field(default=None, compare=False, hash=False)

    def __post_init__(self):
        _validate(self, source=self.name or "policy")

    @property
    def num_slots(self) -> int:
        return max(len(sub) for sub in self.sub_policies)

    @property
    def op_names(self) -> tuple[str, ...]:
        """The distinct ops used, in first-use order."""
        names: dict[str, None] = {}
        for sub in self.sub_policies:
            for step in sub:
                names.setdefault(step.op, None)
        return tuple(names)

    # ---------------------------------------------------------------- conversions
    def to_dict(self) -> dict:
        data = {
            "kaug_policy": FORMAT_VERSION,
            "name": self.name,
            "magnitude_bins": self.magnitude_bins,
            "space": self.space,
            "sub_policies": [
                [{"op": s.op, "p": s.p, "magnitude": s.magnitude} for s in sub]
                for sub in self.sub_policies
            ],
        }
        if self.meta is not None:
            data["meta"] = self.meta
        return data

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            f.write(self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data, source: str = "policy") -> "Policy":
        """Build and validate a policy from its JSON-like dict; errors name `source` and the entry."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a policy must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"kaug_policy", "name", "magnitude_bins", "space", "sub_policies",
                             "meta"}
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)} in policy")
        version = data.get("kaug_policy", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"{source}: kaug_policy version must be {FORMAT_VERSION}, got {version!r}")
        subs = data.get("sub_policies")
        if not isinstance(subs, list) or not subs:
            raise ValueError(f"{source}: 'sub_policies' must be a non-empty list, got {subs!r}")
        parsed = []
        for i, sub in enumerate(subs):
            if not isinstance(sub, list) or not sub:
                raise ValueError(
                    f"{source}: sub_policies[{i}] must be a non-empty list of steps, got {sub!r}"
                )
            parsed.append(tuple(_parse_step(step, f"{source}: sub_policies[{i}][{j}]")
                                for j, step in enumerate(sub)))
        meta = data.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise ValueError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
        return cls(
            tuple(parsed),
            magnitude_bins=data.get("magnitude_bins", AUTOAUGMENT_BINS),
            space=data.get("space", "standard"),
            name=data.get("name", "") or "",
            meta=meta,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "policy JSON") -> "Policy":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: malformed JSON ({e})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str) -> "Policy":
        if not os.path.isfile(path):
            raise ValueError(f"policy file {path!r} does not exist")
        with open(path) as f:
            return cls.from_json(f.read(), source=f"policy file {path!r}")

    @classmethod
    def from_table(cls, table, name: str = "", magnitude_bins: int = AUTOAUGMENT_BINS) -> "Policy":
        subs = tuple(tuple(PolicyOp(op, float(p), m) for op, p, m in sub) for sub in table)
        return cls(subs, magnitude_bins=magnitude_bins, name=name)


def builtin_policy(name: str) -> Policy:
    """One of the published AutoAugment policies: "imagenet", "cifar10" or "svhn".

    Args:
        name: the policy's name; the tables are the paper's (the same entries as torchvision's).

    Example:
        >>> policy = builtin_policy("svhn")
        >>> len(policy.sub_policies), policy.sub_policies[0][0]
        (25, PolicyOp(op='ShearX', p=0.9, magnitude=4))
    """
    if name not in AUTOAUGMENT_TABLES:
        raise ValueError(
            f"policy must be one of {sorted(AUTOAUGMENT_TABLES)} or a path to a policy JSON file, "
            f"got {name!r}"
        )
    return Policy.from_table(AUTOAUGMENT_TABLES[name], name=f"autoaugment-{name}")


def resolve_policy(policy) -> Policy:
    """A built-in name, a JSON file path, a dict or a Policy -> a validated Policy.

    Args:
        policy: `"imagenet"`, `"cifar10"`, `"svhn"`, a path to a policy JSON file, the dict form
            of `Policy.to_dict()`, or a `Policy` (returned as is).

    Example:
        >>> resolve_policy("cifar10").name
        'autoaugment-cifar10'
    """
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, dict):
        return Policy.from_dict(policy)
    if isinstance(policy, (str, os.PathLike)):
        policy = os.fspath(policy)
        if policy in AUTOAUGMENT_TABLES:
            return builtin_policy(policy)
        if policy.endswith(".json") or os.path.sep in policy:
            return Policy.load(policy)
        return builtin_policy(policy)  # raises the "must be one of" error
    raise TypeError(
        f"policy must be a name {sorted(AUTOAUGMENT_TABLES)}, a JSON path, a dict or a Policy, "
        f"got {type(policy).__name__}"
    )


def _parse_step(step, where: str) -> PolicyOp:
    if isinstance(step, dict):
        unknown = set(step) - {"op", "p", "magnitude"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected op, p, magnitude")
        if "op" not in step or "p" not in step:
            raise ValueError(f"{where}: a step needs 'op' and 'p', got {step!r}")
        return PolicyOp(step["op"], step["p"], step.get("magnitude"))
    if isinstance(step, (list, tuple)) and len(step) in (2, 3):
        return PolicyOp(step[0], step[1], step[2] if len(step) == 3 else None)
    raise ValueError(f"{where}: a step must be {{op, p, magnitude}} or [op, p, magnitude], got {step!r}")


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _validate(policy: Policy, source: str) -> None:
    bins = check_integer(f"{source}: magnitude_bins", policy.magnitude_bins, 2)
    if policy.space not in SPACES:
        raise ValueError(f"{source}: space must be one of {list(SPACES)}, got {policy.space!r}")
    if not policy.sub_policies:
        raise ValueError(f"{source}: a policy needs at least one sub-policy")
    for i, sub in enumerate(policy.sub_policies):
        if not sub:
            raise ValueError(f"{source}: sub_policies[{i}] is empty")
        for j, step in enumerate(sub):
            where = f"{source}: sub_policies[{i}][{j}]"
            if step.op not in OPS:
                raise ValueError(f"{where}: unknown op {step.op!r}; known ops: {sorted(OPS)}")
            if not _is_number(step.p) or not 0.0 <= step.p <= 1.0:
                raise ValueError(f"{where} ({step.op}): probability must be in [0, 1], got {step.p!r}")
            if OPS[step.op].has_magnitude:
                m = step.magnitude
                if not _is_number(m) or not 0 <= m <= bins - 1:
                    raise ValueError(
                        f"{where} ({step.op}): magnitude must be a level in [0, {bins - 1}], got {m!r}"
                    )
            elif step.magnitude is not None and not _is_number(step.magnitude):
                raise ValueError(f"{where} ({step.op}): magnitude must be a number or null, "
                                 f"got {step.magnitude!r}")
