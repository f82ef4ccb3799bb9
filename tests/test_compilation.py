"""Every layer compiles its apply step ONCE for all random keys.

XLA turns an input into a compile-time constant when an op needs one (`tf.slice`'s begin, a
strided slice at a traced index, ...). If such an op depends on the layer's random key, XLA
compiles the layer again on every call (measured: 1.2 s per batch instead of 0.05 s for the
policy layers). The key must stay a runtime parameter of the compiled computation.
"""
import pytest
import tensorflow as tf

import keras_aug.layers as L
from layer_cases import MIXING, layer_names, make_layer


def _factories():
    for name in layer_names():
        yield pytest.param(lambda name=name: make_layer(name), name in MIXING, id=name)
    yield pytest.param(lambda: L.RandAugment(3, 9), False, id="RandAugment/n3")


@pytest.mark.parametrize("factory, mixing", list(_factories()))
def test_random_key_is_a_runtime_parameter(factory, mixing):
    layer = factory()
    if not layer.jit_compile:
        pytest.skip("not compiled with XLA")
    images = tf.random.uniform([4, 16, 16, 3], 0, 255)
    data = {"images": images}
    if mixing:
        data["labels"] = tf.one_hot([0, 1, 2, 3], 4)
    # the function the engine compiles (base.augment); lowering to HLO does not compile it
    fn = tf.function(layer._augment_batch, jit_compile=True)
    hlo = fn.experimental_get_compiler_ir(data, tf.constant([1, 2], tf.int64))(stage="hlo")
    entry = next(line for line in hlo.splitlines() if "entry_computation_layout" in line)
    assert "s64[2]" in entry, f"the random key was folded into the compilation: {entry[-200:]}"
