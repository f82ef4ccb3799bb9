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



def shipped_policy(name: str = "digits_fast_aa"):
    """A policy that `kaug search` found and the package ships; `policy.meta["command"]` is the
    command line that produced it (rerun it to check).

    Args:
        name: `"digits_fast_aa"` (Fast AutoAugment on seed 0's 10 training digits per class;
            the test split was never read).

    Example:
        >>> policy = shipped_policy("digits_fast_aa")
        >>> policy.meta["command"].split()[:2]
        ['kaug', 'search']
    """
    from importlib import resources

    from keras_aug.policies.policy import Policy

    files = resources.files("keras_aug.search") / "policies"
    names = sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".json"))
    if name not in names:
        raise ValueError(f"name must be one of {names}, got {name!r}")
    with resources.as_file(files / f"{name}.json") as path:
        return Policy.load(str(path))
