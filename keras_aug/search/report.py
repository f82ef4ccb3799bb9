"""What every search returns and writes: the policy, a report of its trials, a PNG of scores."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from keras_aug.policies.policy import Policy

if TYPE_CHECKING:
    from keras_aug.search.schedule import PolicySchedule


@dataclass
class SearchReport:
    """A search's record: each trial's score, what was chosen, settings and wall time.

    Attributes:
        method: `"fast_aa"`, `"pba"`, `"autoaugment"` or `"faster_aa"`.
        seed: the search's seed.
        wall_time_s: seconds from start to the written policy.
        trials: one dict per trial, `{"trial": i, "group": "fold 0" | "member 3" | ...,
            "score": float, ...}` (higher is better), in completion order.
        chosen: the returned policy's sub-policies as dicts.
        settings: the method's settings (space, child budget, folds, population, ...).
        stopped_early: the time budget ran out before the planned work was done.
        score_name: what `score` measures.

    Example:
        >>> report = SearchReport("fast_aa", 0, 1.0, [{"trial": 0, "group": "fold 0",
        ...                                            "score": 0.9}], [], {})
        >>> SearchReport.from_dict(report.to_dict()) == report
        True
    """

    method: str
    seed: int
    wall_time_s: float
    trials: list[dict]
    chosen: list
    settings: dict
    stopped_early: bool = False
    score_name: str = "score"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SearchReport":
        return cls(**data)

    def save(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        return path

    def plot(self, path: str) -> str:
        """Scores over trials, one colour per group, with the running best."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.6))
        groups: dict[str, list] = {}
        for i, t in enumerate(self.trials):
            groups.setdefault(str(t.get("group", "")), []).append((i, t["score"]))
        for group, points in groups.items():
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=10, label=group or None, alpha=0.7)
        if self.trials:
            best, running = float("-inf"), []
            for t in self.trials:
                best = max(best, t["score"])
                running.append(best)
            ax.plot(range(len(running)), running, color="black", lw=1, label="best so far")
        ax.set_xlabel("trial (completion order)")
        ax.set_ylabel(self.score_name)
        ax.set_title(f"{self.method}: {len(self.trials)} trials in {self.wall_time_s / 60:.1f} "
                     f"min" + (" (stopped at the time budget)" if self.stopped_early else ""))
        if len(groups) <= 12:
            ax.legend(fontsize=7, loc="lower right", ncol=2)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


@dataclass
class SearchResult:
    """A search's output: `policy` (for `AutoAugment`), its `report`, and for PBA the
    `schedule` the policy follows during training.

    Attributes:
        policy: the searched `Policy`.
        report: the `SearchReport`.
        schedule: the `PolicySchedule` (PBA) or `None`.

    Example:
        >>> result.save("policy.json")   # doctest: +SKIP
        ['policy.json', 'policy.report.json', 'policy.png']
    """

    policy: Policy
    report: SearchReport
    schedule: "PolicySchedule | None" = None

    def save(self, path: str, command: str | None = None) -> list[str]:
        """Write the policy to `path` (with its provenance in `meta`), the report to
        `<stem>.report.json`, the PNG to `<stem>.png` and the schedule (PBA) to
        `<stem>.schedule.json`; returns the paths written."""
        stem = os.path.splitext(path)[0]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        meta = {"method": self.report.method, "seed": self.report.seed,
                "wall_time_s": round(self.report.wall_time_s, 1),
                "trials": len(self.report.trials), "stopped_early": self.report.stopped_early}
        if command:
            meta["command"] = command
        policy = Policy(self.policy.sub_policies, self.policy.magnitude_bins, self.policy.space,
                        self.policy.name or f"{self.report.method}-search", meta=meta)
        policy.save(path)
        written = [path, self.report.save(stem + ".report.json"), self.report.plot(stem + ".png")]
        if self.schedule is not None:
            written.append(self.schedule.save(stem + ".schedule.json"))
        return written
