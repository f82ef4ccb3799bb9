"""A wall-clock budget with a progress bar: searches stop cleanly when it runs out."""
from __future__ import annotations

import time

from keras_aug.core.validation import check_number


class Budget:
    """`minutes` of wall time from construction, and a tqdm bar over `total` units of work
    whose ETA is the sooner of the work left and the time left.

    Args:
        minutes: the wall-clock budget (> 0).
        total: units of work planned (trials, generations); the bar's length.
        desc: the bar's label.
        progress: show the bar (on stderr).

    Example:
        >>> budget = Budget(minutes=0.5, total=3, progress=False)
        >>> budget.update(); budget.expired(), budget.done
        (False, 1)
    """

    def __init__(self, minutes: float, total: int | None = None, desc: str = "search",
                 progress: bool = True):
        self.minutes = check_number("minutes", minutes, 0.0, low_open=True)
        self.start = time.monotonic()
        self.done = 0
        self._bar = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="trial", dynamic_ncols=True)

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            left = self.remaining()
            self._bar.set_postfix(dict(postfix, left=f"{left / 60:.1f}min"), refresh=False)

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Budget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
