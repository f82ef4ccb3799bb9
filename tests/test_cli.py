import os

import pytest

from keras_aug.cli import main


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
    assert "| no augmentation |" in printed
    assert "max |serve - predict|" in printed and "(equal)" in printed
    for name in ("results.md", "learning_curves.png", "preview.png"):
        assert os.path.getsize(out / name) > 100
    assert (out / "saved_model" / "saved_model.pb").exists()
