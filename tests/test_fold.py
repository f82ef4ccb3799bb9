"""p folding: policy and erasing layers give samples `p` leaves out identity parameters instead
of computing their augmentation and selecting the input back; the outputs stay bit-identical."""
import numpy as np
import pytest
import tensorflow as tf

import keras_aug.layers as L

# float pixels in range, not on the 256 levels: identity parameters must be exact on them too
IMAGES = tf.random.stateless_uniform([8, 24, 24, 3], [3, 4], 0, 255)

CASES = {
    "RandAugment": lambda **kw: L.RandAugment(num_ops=2, magnitude=9, **kw),
    # no Identity among the ops: the executor gets a trailing one to fold into
    "RandAugment-no-identity": lambda **kw: L.RandAugment(
        num_ops=2, magnitude=9, ops=["Rotate", "Equalize", "Solarize", "Invert", "Sharpness"],
        **kw),
    "RandAugment-graph": lambda **kw: L.RandAugment(num_ops=2, magnitude=9, jit_compile=False,
                                                    **kw),
    "TrivialAugmentWide": lambda **kw: L.TrivialAugmentWide(**kw),
    "AutoAugment": lambda **kw: L.AutoAugment("imagenet", **kw),
    "AugMix": lambda **kw: L.AugMix(**kw),
    "RandomErasing-pixel": lambda **kw: L.RandomErasing(mode="pixel", **kw),
    "RandomErasing-random": lambda **kw: L.RandomErasing(mode="random", max_boxes=3, **kw),
    "RandomCutout": lambda **kw: L.RandomCutout(size=0.5, **kw),
    "GridMask": lambda **kw: L.GridMask(**kw),
}


def _select_path(layer):
    """The same layer without p folding: its augmentation of every sample, then a select."""
    layer.fold_p = lambda params, apply: None
    return layer


@pytest.mark.parametrize("case", sorted(CASES))
def test_fold_equals_select(case):
    folded = CASES[case](p=0.0, seed=7, value_range=(0, 255))
    selected = _select_path(CASES[case](p=0.0, seed=7, value_range=(0, 255)))
    for p in (0.0, 0.5, 1.0):  # live p: one compiled graph per layer
        folded.p = selected.p = p
        a, b = folded(IMAGES), selected(IMAGES)
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"{case} at p={p}")
        if p == 0.0:
            np.testing.assert_array_equal(a.numpy(), IMAGES.numpy())
        if p == 1.0:
            assert not np.array_equal(a.numpy(), IMAGES.numpy())


@pytest.mark.parametrize("name", ["RandAugment", "TrivialAugmentWide", "AutoAugment", "AugMix"])
def test_policy_fold_runs_identity(name):
    layer = CASES[name](seed=0)
    params = {"ops": tf.ones([8 * (3 if name == "AugMix" else 1), 2], tf.int32)}
    apply = tf.constant([True, False] * 4)
    ops = layer.fold_p(params, apply)["ops"].numpy().reshape([8, -1])
    assert (ops[1::2] == layer._executor_names.index("Identity")).all()
    assert (ops[::2] == 1).all()
