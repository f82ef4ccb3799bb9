"""Every keras.applications model builds from the registry (weights=None, minimum input size)
and splits into whole blocks. Slow (~40 models, build only), so the fast file tests a subset."""
import pytest

from test_finetune import _applications, check_backbone_blocks

FAST = {"VGG16", "MobileNetV2", "ResNet50V2", "MobileNetV3Small"}  # built in test_finetune.py


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in _applications() if n not in FAST])
def test_every_application_builds_and_has_whole_blocks(name):
    check_backbone_blocks(name)
