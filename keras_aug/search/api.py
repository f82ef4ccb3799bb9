"""`search_policy`: one entry point for every search method."""
from __future__ import annotations

import importlib

from keras_aug.search.report import SearchResult
from keras_aug.search.task import SearchTask

# method name -> module whose `search(task, *, minutes, seed, workdir, resume, progress, ...)`
# runs it.
METHODS = {
    "fast_aa": "keras_aug.search.fast_aa",
    "pba": "keras_aug.search.pba",
    "autoaugment": "keras_aug.search.controller",
    "faster_aa": "keras_aug.search.faster_aa",
}


def search_policy(task: SearchTask, method: str = "fast_aa", *, minutes: float = 10.0,
                  seed: int = 0, workdir: str | None = None, resume: bool = False,
                  progress: bool = True, **options) -> SearchResult:
    """Search an augmentation policy for `task` with `method` in at most `minutes`.

    Args:
        task: a `SearchTask` (images, labels, search space, child budget).
        method: one of `METHODS`: `"fast_aa"`, `"pba"`, `"autoaugment"`, `"faster_aa"`.
        minutes: wall-clock budget; every method stops cleanly and returns its best so far.
        seed: the search's seed.
        workdir: where the method keeps its state (trials, checkpoints), for `resume`.
        resume: continue the search kept in `workdir`.
        progress: show a progress bar with the time left.
        **options: the method's own settings (e.g. `folds=`, `trials=` for fast_aa; see each
            method's `search`).

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=10)              # doctest: +SKIP
        >>> result = search_policy(task, "fast_aa", minutes=5)                  # doctest: +SKIP
        >>> result.save("policy.json")                                          # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if not isinstance(task, SearchTask):
        raise TypeError(f"task must be a SearchTask, got {type(task).__name__}")
    module = importlib.import_module(METHODS[method])
    return module.search(task, minutes=minutes, seed=seed, workdir=workdir, resume=resume,
                         progress=progress, **options)

