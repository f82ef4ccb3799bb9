"""The user-facing documentation: README size and code, the MkDocs site, docstrings.

README code blocks: every ```python block runs in a fresh interpreter (repository on PYTHONPATH,
a temporary working directory), so what a reader copies works. A block that needs a long training
can opt out with the comment `# doc: skip` on any line; the README says how many do.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP_MARK = "# doc: skip"
PUBLIC_MODULES = ["keras_aug.layers", "keras_aug.data", "keras_aug.policies", "keras_aug.adversarial",
                  "keras_aug.core", "keras_aug.search", "keras_aug.diagnose", "keras_aug.recipe", "gan", "finetune"]


def readme_python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def subprocess_env() -> dict:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               NO_MKDOCS_2_WARNING="1", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return env


def load_api_hook():
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "docs" / "hooks" / "api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_has_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; the limit is 250 (move detail to docs/)"


def test_readme_keeps_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_python_block_runs(index, tmp_path):
    code = readme_python_blocks()[index]
    if SKIP_MARK in code:
        pytest.skip("block marked '# doc: skip' (needs a long training)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=subprocess_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"README block {index} failed:\n{code}\n--- stderr ---\n{result.stderr[-4000:]}"


def test_api_reference_lists_every_public_name():
    hook = load_api_hook()
    for module in PUBLIC_MODULES:
        page = hook.render_module_page(module)
        mod = importlib.import_module(module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if hook.is_documented_object(obj):
                assert f"::: {hook.object_path(obj)}\n" in page, f"{module}.{name} missing from its API page"
            else:
                assert f"`{name}`" in page, f"{module}.{name} missing from its API page"


def test_every_public_module_has_an_api_page_in_the_nav():
    import yaml

    hook = load_api_hook()

    class Loader(yaml.SafeLoader):
        pass

    # mkdocs.yml may use python tags (e.g. !!python/name); ignore them here.
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)
    assert set(PUBLIC_MODULES) <= set(hook.api_modules(config["nav"]))


def public_callables():
    for module in PUBLIC_MODULES:
        mod = importlib.import_module(module)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield mod, f"{module}.{name}", obj


def takes_arguments(obj) -> bool:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return True
    return any(name != "self" for name in signature.parameters)


def test_every_public_class_and_function_has_args_and_an_example():
    missing = []
    for _, qualname, obj in public_callables():
        doc = obj.__doc__ or ""
        # Dataclasses and other records list their fields under "Attributes:".
        has_args = ("Args:" in doc or (inspect.isclass(obj) and "Attributes:" in doc)
                    or not takes_arguments(obj))
        problems = [part for part, ok in (("docstring", doc.strip()), ("Args:", has_args),
                                          ("Example", "Example" in doc)) if not ok]
        if problems:
            missing.append(f"{qualname}: no {', '.join(problems)}")
    assert not missing, "docstrings to complete:\n" + "\n".join(missing)


@pytest.mark.slow
def test_docstring_examples_run():
    """The `>>>` examples of every public class and function (they build small inputs themselves)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_aug
    import keras_aug.layers  # noqa: F401  (examples refer to keras_aug.layers.X)

    import contextlib
    import io

    from keras_aug.data import load_dataset

    # Preparing a TFDS dataset the first time prints; the examples should not see that.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for name in ("digits", "digits/rgb32"):
            load_dataset(name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failures = []
    for mod, qualname, obj in public_callables():
        home = sys.modules[obj.__module__]
        # An example sees its own module's names, its public package's and these four.
        globs = {**vars(mod), **vars(home), "keras_aug": keras_aug, "keras": keras, "tf": tf, "np": np}
        for test in finder.find(obj, qualname, module=home, globs=globs):
            result = runner.run(test, out=lambda s: failures.append(s))
            if result.failed:
                failures.append(f"-- in {qualname}")
    assert not failures, "".join(failures)


def test_benchmark_report_page():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    table = "\n## 32x32, batch 256: images/second\n\n| layer | ours |\n|---|---|\n| RandomFlip | 1 |\n"
    page = report.render_page({"layers": table}, {"layers": "--sizes 32", "mixing": "skip"},
                              {"date (UTC)": "2026-12-01 00:00", "TensorFlow": "2.21.0"},
                              "python benchmarks/report.py --layers '--sizes 32'", partial=True)
    assert page.startswith("# Benchmarks\n")
    assert "### 32x32, batch 256" in page and "| RandomFlip | 1 |" in page
    assert "Partial run" in page and "`python benchmarks/layers.py --sizes 32`" in page
    assert "| TensorFlow | 2.21.0 |" in page


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert not re.search(r"^WARNING +-", log, flags=re.M), log[-6000:]
    layers_page = (site / "api" / "keras_aug.layers.html").read_text()
    import keras_aug.layers

    for name in keras_aug.layers.__all__:
        obj = getattr(keras_aug.layers, name)
        assert f'id="{obj.__module__}.{obj.__qualname__}"' in layers_page, f"{name} not in the built API page"
    assert (site / "index.html").exists() and (site / "benchmarks.html").exists()
