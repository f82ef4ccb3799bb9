"""Policies that change during training (Population Based Augmentation's output)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import keras

from keras_aug.core.validation import check_integer
from keras_aug.policies.policy import Policy

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PolicySchedule:
    """A policy per epoch range: `entries[i] = (first_epoch, policy)`, first epochs increasing
    from 0, every policy of the same shape (so one `AutoAugment` follows it without retracing).

    JSON: `{"kaug_policy_schedule": 1, "epochs": E, "entries": [{"epoch": 0, "policy": {...}},
    ...]}`.

    Args:
        entries: `(first epoch, Policy)` pairs.
        epochs: the training length the schedule was made for (later epochs keep the last
            policy).

    Example:
        >>> from keras_aug.policies import PolicyOp
        >>> a = Policy(((PolicyOp("Rotate", 0.2, 1),),))
        >>> b = Policy(((PolicyOp("Rotate", 0.6, 5),),))
        >>> schedule = PolicySchedule(((0, a), (10, b)), epochs=20)
        >>> schedule.policy_at(12) == b
        True
    """

    entries: tuple[tuple[int, Policy], ...]
    epochs: int

    def __post_init__(self):
        check_integer("epochs", self.epochs)
        if not self.entries:
            raise ValueError("a schedule needs at least one (epoch, policy) entry")
        starts = [int(e) for e, _ in self.entries]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"schedule epochs must start at 0 and increase, got {starts}")
        shapes = {(len(p.sub_policies), p.num_slots, p.space) for _, p in self.entries}
        if len(shapes) != 1:
            raise ValueError(f"every policy of a schedule must have the same shape and space, "
                             f"got {sorted(shapes)}")

    def entry_at(self, epoch: int) -> int:
        """The index of the entry in force at `epoch` (0-based)."""
        return max(i for i, (start, _) in enumerate(self.entries) if epoch >= start)

    def policy_at(self, epoch: int) -> Policy:
        """The policy in force at `epoch` (0-based)."""
        return self.entries[self.entry_at(epoch)][1]

    @property
    def final(self) -> Policy:
        return self.entries[-1][1]

    def to_dict(self) -> dict:
        return {"kaug_policy_schedule": FORMAT_VERSION, "epochs": self.epochs,
                "entries": [{"epoch": int(e), "policy": p.to_dict()} for e, p in self.entries]}

    def save(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    @classmethod
    def from_dict(cls, data, source: str = "schedule") -> "PolicySchedule":
        if not isinstance(data, dict) or data.get("kaug_policy_schedule") != FORMAT_VERSION:
            raise ValueError(f"{source}: not a kaug policy schedule (expected "
                             f"'kaug_policy_schedule': {FORMAT_VERSION})")
        unknown = set(data) - {"kaug_policy_schedule", "epochs", "entries"}
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {sorted(unknown)}")
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ValueError(f"{source}: 'entries' must be a list of {{epoch, policy}}")
        parsed = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or set(entry) != {"epoch", "policy"}:
                raise ValueError(f"{source}: entries[{i}] must be {{epoch, policy}}, got {entry!r}")
            parsed.append((check_integer(f"{source}: entries[{i}].epoch", entry["epoch"], 0),
                           Policy.from_dict(entry["policy"], f"{source}: entries[{i}].policy")))
        return cls(tuple(parsed), epochs=data.get("epochs", 1))

    @classmethod
    def load(cls, path: str) -> "PolicySchedule":
        if not os.path.isfile(path):
            raise ValueError(f"schedule file {path!r} does not exist")
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"schedule file {path!r}: malformed JSON ({e})") from None
        return cls.from_dict(data, source=f"schedule file {path!r}")


class ScheduledPolicy(keras.callbacks.Callback):
    """Sets `layer.policy` from a `PolicySchedule` at the start of every epoch (the layer reads
    its table in-graph: no retrace, in tf.data or inside the model) and logs the entry in force.

    Args:
        layer: an `AutoAugment` built with the schedule's shape (e.g.
            `AutoAugment(schedule.entries[0][1], ops="all")`).
        schedule: a `PolicySchedule` or a path to its JSON.
        epoch_scale: schedule epochs per training epoch (a schedule made for 30 epochs followed
            over a 10-epoch fit: 3.0).

    Example:
        >>> layer = keras_aug.layers.AutoAugment(schedule.final, ops="all")    # doctest: +SKIP
        >>> model.fit(ds, epochs=30, callbacks=[ScheduledPolicy(layer, schedule)])  # doctest: +SKIP
    """

    def __init__(self, layer, schedule, epoch_scale: float = 1.0):
        super().__init__()
        if isinstance(schedule, (str, os.PathLike)):
            schedule = PolicySchedule.load(os.fspath(schedule))
        if not isinstance(schedule, PolicySchedule):
            raise TypeError(f"schedule must be a PolicySchedule or a path, got "
                            f"{type(schedule).__name__}")
        if not hasattr(type(layer), "policy"):
            raise TypeError(f"layer must be an AutoAugment (something with a settable policy), "
                            f"got {type(layer).__name__}")
        self.layer, self.schedule, self.epoch_scale = layer, schedule, float(epoch_scale)
        self._entry = None

    def on_epoch_begin(self, epoch, logs=None):
        index = self.schedule.entry_at(int(epoch * self.epoch_scale))
        if index != self._entry:
            self.layer.policy = self.schedule.entries[index][1]
            self._entry = index

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["policy_entry"] = float(self._entry)

