"""Entry-point plugins: the `kaug.commands` and `kaug.demo_rows` groups.

Loading is loud on purpose: a plugin that fails to import raises an error naming its entry
point, instead of silently vanishing from the command or the demo table.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

COMMANDS = "kaug.commands"
DEMO_ROWS = "kaug.demo_rows"


class PluginError(RuntimeError):
    """An entry point of a kaug group is missing, or failed to load or to do its job."""


def plugins(group: str) -> list[tuple[EntryPoint, Any]]:
    """Every entry point of `group` with the object it names, sorted by entry-point name.

    Raises PluginError when the group is empty (kaug's own plugins come from its installed
    metadata, so an empty group means a stale install) or when an entry point fails to load.
    """
    found = sorted(entry_points(group=group), key=lambda ep: ep.name)
    if not found:
        raise PluginError(
            f"no entry points in group {group!r}: kaug's metadata is missing or stale; "
            "reinstall it (pip install -e .)"
        )
    loaded = []
    for ep in found:
        try:
            loaded.append((ep, ep.load()))
        except Exception as err:  # any failure: name the plugin, keep the cause attached
            raise plugin_error(ep, f"failed to load: {type(err).__name__}: {err}") from err
    return loaded


def plugin_error(ep: EntryPoint, problem: str) -> PluginError:
    """A PluginError that names `ep` (its name, target and group) before `problem`."""
    return PluginError(f"entry point {ep.name!r} = {ep.value!r} in group {ep.group!r} {problem}")
