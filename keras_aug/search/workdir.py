"""A search's state directory: its settings and data, so that a resumed search is the same one."""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

SETTINGS = "settings.json"
TASK = "task.npz"


def prepare_workdir(workdir: str | None, task, settings: dict, resume: bool,
                    growable: tuple[str, ...] = (), prefix: str = "kaug-search-") -> str:
    """Create `workdir` (a new temporary directory if None) holding `settings` and the task's
    arrays, or check that a resumed search there has the same settings; returns the directory.

    Args:
        workdir: the directory; `None` makes a temporary one (nothing to resume there).
        task: the `SearchTask` (its arrays are saved for worker processes).
        settings: JSON-able settings that define the search.
        resume: continue the search in `workdir`; without it, an existing search is an error.
        growable: settings a resumed search may change (e.g. more trials).
        prefix: the temporary directory's name prefix.

    Example:
        >>> task = SearchTask.from_dataset("digits", per_class=2)
        >>> path = prepare_workdir(None, task, {"seed": 0}, resume=False)
        >>> prepare_workdir(path, task, {"seed": 1}, resume=True)
        Traceback (most recent call last):
        ...
        ValueError: resume: the search in '...' was made with other settings (seed differ); resume with the same ones
    """
    if workdir is None:
        if resume:
            raise ValueError("resume=True needs the workdir of the search to continue")
        workdir = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, SETTINGS)
    if os.path.exists(path):
        if not resume:
            raise ValueError(f"workdir {workdir!r} already holds a search; pass resume=True "
                             f"(kaug search --resume) to continue it, or use another directory")
        try:
            with open(path) as f:
                saved = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read the search settings {path!r}: {e}") from None
        changed = sorted(k for k in set(saved) | set(settings)
                         if k not in growable and saved.get(k) != settings.get(k))
        if changed:
            raise ValueError(f"resume: the search in {workdir!r} was made with other settings "
                             f"({', '.join(changed)} differ); resume with the same ones")
        saved.update({k: settings[k] for k in growable if k in settings})
        with open(path, "w") as f:
            json.dump(saved, f, indent=1)
        return workdir
    if resume:
        raise ValueError(f"resume: {workdir!r} holds no search to continue")
    np.savez(os.path.join(workdir, TASK), images=task.images, labels=task.labels,
             num_classes=task.num_classes)
    with open(path, "w") as f:
        json.dump(settings, f, indent=1)
    return workdir
