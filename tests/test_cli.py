import ast
import os
import pathlib
import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points

import pytest

from kaug.cli import build_parser, main


def test_preview_writes_png(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["preview", "--layer", "RandomFlip", "--image", "digits", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000 and "Wrote" in capsys.readouterr().out


def test_preview_bad_inputs(tmp_path, capsys):
    assert main(["preview", "--layer", "NoSuchLayer", "--out", str(tmp_path / "x.png")]) == 2
    assert "Unknown layer 'NoSuchLayer'. Available:" in capsys.readouterr().err
    assert main(["preview", "--layer", "RandomFlip", "--image", str(tmp_path / "missing.png")]) == 2
    assert "--image must be astronaut" in capsys.readouterr().err
    assert main(["preview", "--layer", "RandomFlip", "--args", "[1]"]) == 2
    assert "--args must be a JSON object" in capsys.readouterr().err


def test_demo_bad_steps(capsys):
    assert main(["demo", "--steps", "0"]) == 2
    assert "--steps must be >= 10, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_quick_smoke(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| no augmentation |" in printed and "| kaug train (recipe) |" in printed
    assert "max |serve - predict|" in printed and "(equal)" in printed
    for name in ("results.md", "learning_curves.png", "preview.png"):
        assert os.path.getsize(out / name) > 100
    assert (out / "saved_model" / "saved_model.pb").exists()


# ------------------------------------------------------------------ the command's shape

# Runs the console script's code path and reports whether TensorFlow/Keras got imported: `kaug`
# (the installed script) would hide sys.modules, so the test calls kaug.cli.main the same way.
_HELP_PROBE = """
import sys
from kaug.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted(m for m in ("tensorflow", "keras", "keras_aug", "gan", "finetune") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def _help(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    return subprocess.run([sys.executable, "-c", _HELP_PROBE, *args, "--help"], env=env,
                          capture_output=True, text=True, timeout=60)


def _commands() -> list[str]:
    from kaug.plugins import COMMANDS

    return sorted(ep.name for ep in entry_points(group=COMMANDS))


@pytest.mark.parametrize("command", [None, "demo", "preview", "gan", "finetune", "adversarial",
                                     "diagnose", "search", "train"])
def test_help_imports_no_tensorflow(command):
    """`kaug --help` and `kaug <command> --help` build the parser without TensorFlow: no
    start-up log lines, no tensorflow/keras/library module imported."""
    result = _help(*([command] if command else []))
    assert result.returncode == 0, result.stderr
    assert "usage: kaug" in result.stdout
    assert "HEAVY:\n" in result.stdout, result.stdout.splitlines()[-1]
    assert result.stderr == "", result.stderr  # e.g. TF's "oneDNN custom operations" lines


def test_every_command_is_an_entry_point():
    assert _commands() == ["adversarial", "demo", "diagnose", "finetune", "gan", "preview",
                           "search", "train"]
    assert set(_commands()) == set(build_parser()._subparsers._group_actions[0].choices)


def test_adversarial_choices_match_the_trainer():
    from kaug.adversarial_experiment import EXPERIMENT_MODES
    from kaug.commands.adversarial import MODES

    assert set(MODES) == set(EXPERIMENT_MODES)


def _fake_entry_point(group: str, value: str) -> EntryPoint:
    return EntryPoint(name="broken", value=value, group=group)


def test_broken_plugin_fails_loudly(monkeypatch):
    """A plugin that cannot be imported stops the command with its entry point's name (the old
    `except ImportError: continue` hid it)."""
    import kaug.plugins as plugins

    broken = _fake_entry_point(plugins.COMMANDS, "kaug.no_such_module:register")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken])
    with pytest.raises(plugins.PluginError, match=r"entry point 'broken' = 'kaug.no_such_module:"
                                                  r"register' in group 'kaug.commands' failed to "
                                                  r"load: ModuleNotFoundError"):
        build_parser()
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    with pytest.raises(plugins.PluginError, match="no entry points in group 'kaug.demo_rows'"):
        plugins.plugins(plugins.DEMO_ROWS)


def test_plugin_must_add_its_subcommand(monkeypatch):
    import kaug.plugins as plugins

    silent = _fake_entry_point(plugins.COMMANDS, "builtins:print")  # loads, registers nothing
    monkeypatch.setattr(plugins, "entry_points", lambda group: [silent])
    with pytest.raises(plugins.PluginError, match="did not add a subcommand named 'broken'"):
        build_parser()


def test_broken_demo_row_fails_loudly(monkeypatch):
    import kaug.demo as demo
    import kaug.plugins as plugins

    wrong = _fake_entry_point(plugins.DEMO_ROWS, "builtins:dir")  # returns strings, no DemoRow
    monkeypatch.setattr(plugins, "entry_points", lambda group: [wrong])
    with pytest.raises(plugins.PluginError, match="expected DemoRow"):
        demo.demo_rows()


LIBRARIES = ("keras_aug", "gan", "finetune")
APPS = "kaug"


def _imported_modules(path: pathlib.Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            modules.add(node.args[0].value)
    return modules


def test_libraries_never_import_the_apps():
    """keras_aug, gan and finetune import nothing from `kaug` (the command builds on them, never
    the reverse); checked statically, so lazy imports inside functions count too."""
    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = []
    for library in LIBRARIES:
        for path in sorted((root / library).rglob("*.py")):
            bad = [m for m in _imported_modules(path) if m == APPS or m.startswith(APPS + ".")]
            offenders += [f"{path.relative_to(root)} imports {m}" for m in bad]
    assert not offenders, offenders
