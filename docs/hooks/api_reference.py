"""MkDocs hook: generate the API reference pages from the public `__all__` lists.

Every nav entry `api/<module>.md` that does not exist in docs/ is generated here: one
mkdocstrings block per name in `<module>.__all__`, grouped by the submodule that defines it. A name
added to an `__all__` therefore appears in the reference with no edit to the docs; a new module
needs one line in mkdocs.yml's nav.
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def use_this_checkout() -> None:
    """Import the packages of this checkout (the ones mkdocstrings reads), not another installed
    copy. Called at build time: MkDocs restores sys.path after loading a hook module."""
    if sys.path[:1] != [REPO_ROOT]:
        sys.path.insert(0, REPO_ROOT)

API_DIR = "api/"


def api_modules(nav) -> list[str]:
    """The modules named by `api/<module>.md` entries anywhere in the nav (index pages excluded)."""
    found = []

    def walk(item):
        if isinstance(item, str):
            if item.startswith(API_DIR) and item.endswith(".md") and item != API_DIR + "index.md":
                found.append(item[len(API_DIR):-len(".md")])
        elif isinstance(item, dict):
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(nav or [])
    return found


def is_documented_object(obj) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj)


def object_path(obj) -> str:
    """The dotted path mkdocstrings should render: where a class or function is defined."""
    return f"{obj.__module__}.{obj.__qualname__}"


def describe_constant(name: str, obj, level: int) -> list[str]:
    """A constant (a key name, a registry dict) is described from its value, not a docstring."""
    if isinstance(obj, dict):
        keys = ", ".join(f"`{k}`" for k in list(obj)[:60])
        more = f" and {len(obj) - 60} more" if len(obj) > 60 else ""
        text = f"`dict` of {len(obj)} entries, keyed by name: {keys}{more}."
    else:
        text = f"`{type(obj).__name__}` = `{obj!r}`"
    return [f"{'#' * level} `{name}`", "", text, ""]


def render_module_page(module: str) -> str:
    """Markdown for one module's reference page, built from its `__all__`."""
    use_this_checkout()
    mod = importlib.import_module(module)
    names = list(getattr(mod, "__all__", []))
    if not names:
        raise ValueError(f"{module} has no __all__ to document")
    summary = (inspect.getdoc(mod) or "").split("\n\n")[0]
    summary = re.sub(r"(?<!`)\b(__\w+__)\b(?!`)", r"`\1`", summary)  # not Markdown bold
    lines = [f"# {module}", "", summary, "",
             f"Generated from `{module}.__all__` ({len(names)} names).", ""]
    groups: dict[str, list[tuple[str, object]]] = {}
    for name in names:
        obj = getattr(mod, name)
        home = obj.__module__ if is_documented_object(obj) else module
        groups.setdefault(home, []).append((name, obj))
    several = len(groups) > 1
    for home, members in groups.items():
        if several:
            lines += [f"## {home}", ""]
        level = 3 if several else 2
        for name, obj in members:
            if is_documented_object(obj):
                lines += [f"::: {object_path(obj)}", "    options:", f"      heading_level: {level}", ""]
            else:
                lines += describe_constant(name, obj, level)
    return "\n".join(lines)


def on_config(config):
    """Docstrings here title their examples "Example:" (Keras' style). Griffe's Google parser
    knows only "Examples:" as the section whose `>>>` lines become code; map the singular too."""
    try:
        from griffe._internal.docstrings import google
    except ImportError:  # another griffe layout: the build then warns, and --strict says so
        return config
    google._section_kind.setdefault("example", google.DocstringSectionKind.examples)
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for module in api_modules(config.nav):
        uri = f"{API_DIR}{module}.md"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, content=render_module_page(module)))
    return files
