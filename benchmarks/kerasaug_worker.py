"""KerasAug's side of `benchmarks/layers.py --kerasaug-python PATH`, run by that interpreter.

KerasAug (PyPI `keras-aug`) also imports as `keras_aug`, so it cannot share a process (or an
environment) with ours. `layers.py` starts this script once in KerasAug's virtual environment and
sends one JSON request per line on stdin; each answer is one JSON line on stdout:

    {"images": "/tmp/x.npy", "spec": "RandomFlip('horizontal', p=0.5)", "batch": 64,
     "batches": 8, "takes_labels": false, "range_dependent": false}
    -> {"rate": 6012.3}   (or {"rate": null, "error": "..."})

`spec` is a constructor call evaluated with `keras_aug.layers.vision` as the namespace and `size`
(the image side) bound. The timing is `harness.pipeline_throughput`, the same tf.data pipeline and
cached data as ours. Value ranges: a layer whose output does not depend on the value range
(geometry, erasing, mixing, blur) gets exactly our pipeline (uint8 cached, cast to float32); a
`range_dependent` one gets the images as float32 in [0, 1] (KerasAug's convention) straight from
the cache, so it skips the cast that ours pays — a bias in KerasAug's favour.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import pipeline_throughput  # noqa: E402

import numpy as np  # noqa: E402


def _kerasaug_vision():
    try:
        from keras_aug.layers import vision
    except ImportError as error:  # ours is importable as `keras_aug` too, without `vision`
        import keras_aug

        raise SystemExit(
            f"kerasaug_worker: {sys.executable} imports keras_aug from "
            f"{os.path.dirname(keras_aug.__file__)}, which is not KerasAug ({error}); pass the "
            "python of a virtual environment with `pip install keras-aug`") from error
    return vision


def _augment(layer, takes_labels: bool):
    if not takes_labels:
        return lambda x, training=True: layer(x)

    def mix(data):  # KerasAug's mixing layers take a dict
        out = layer({"images": data[0], "labels": data[1]})
        return out["images"], out["labels"]

    return mix


def _last_line(error: Exception) -> str:
    """The message's last informative line (TF/Keras wrap it in traceback text)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("•", "Arguments received", "File"))]
    return (useful or lines or [""])[-1]


def main() -> None:
    vision = _kerasaug_vision()
    import keras_aug

    print(json.dumps({"ready": True, "version": keras_aug.__version__}), flush=True)
    layers, data = {}, {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            key = (request["images"], request["range_dependent"])
            if key not in data:
                images = np.load(request["images"])
                data[key] = images.astype(np.float32) / 255.0 if key[1] else images
            size = int(data[key].shape[1])
            layer_key = (request["spec"], size)
            if layer_key not in layers:  # kept across rounds: traced once, as ours
                layers[layer_key] = eval(request["spec"], {"__builtins__": {}},  # noqa: S307
                                         {**vars(vision), "size": size})
            rate = pipeline_throughput(_augment(layers[layer_key], request["takes_labels"]),
                                       data[key], request["batch"], request["batches"], passes=1,
                                       takes_labels=request["takes_labels"])
            answer = {"rate": rate}
        except Exception as error:  # reported under the table (in full on stderr); the run goes on
            print(f"kerasaug_worker: {request['spec']}: {error!r}", file=sys.stderr)
            answer = {"rate": None, "error": f"{type(error).__name__}: {_last_line(error)}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
