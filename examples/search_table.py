"""Searched policies vs published ones on few-shot digits, 3 seeds, the same classifier and budget.

    python examples/search_table.py [--per-class 10 50] [--seeds 0 1 2] [--steps 800]
        [--methods fast_aa] [--minutes 8] [--out runs/search_table] [--rows none rand-m9-n2 ...]

For each size and seed: the few-shot train subset of that seed is the only data a search sees
(`SearchTask` of those images; the 797 test images are never read by a search); each method's
policy is searched with `kaug search`'s defaults for `--minutes` (every search first, so that their
wall times are measured without the arms' training beside them), then every arm trains the demo CNN
(`kaug.demo.train_classifier`, 800 steps of batch 25) and is tested on the 797 held-out digits.
Prints a markdown table (mean ± std) with each method's mean search wall time, and writes each
searched policy to OUT/<method>-<per_class>-seed<seed>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kaug.demo import DemoConfig, DemoData, train_classifier  # noqa: E402
from keras_aug.data import dataset_to_numpy, few_shot, load_dataset  # noqa: E402
from keras_aug.layers import AutoAugment  # noqa: E402
from keras_aug.policies import from_spec  # noqa: E402
from keras_aug.search import SearchTask, search_policy  # noqa: E402

PUBLISHED = ["none", "rand-m9-n2", "trivialaugment", "autoaugment-cifar10"]


def search_all(per_class: int, seeds, methods, minutes: float, out: str) -> None:
    """Every method's search on every seed's training subset (a finished one is skipped)."""
    dataset = load_dataset("digits")
    for seed in seeds:
        images, labels = dataset_to_numpy(few_shot(dataset.train, per_class, seed=seed))
        for method in methods:
            path = os.path.join(out, f"{method}-{per_class}-seed{seed}.json")
            if not os.path.exists(path):
                task = SearchTask(images.astype(np.uint8), labels, dataset.num_classes)
                start = time.time()
                result = search_policy(task, method, minutes=minutes, seed=seed,
                                       workdir=path[:-5] + ".search", progress=False,
                                       resume=os.path.isdir(path[:-5] + ".search"))
                result.save(path, command=f"examples/search_table.py: {method} "
                                          f"per_class={per_class} seed={seed} minutes={minutes}")
                print(f"seed {seed} {method} search: {time.time() - start:.0f}s", flush=True)


def run(per_class: int, seeds, steps: int, methods, rows, out: str) -> dict:
    """Every arm on every seed: the demo CNN trained `steps` steps, tested on the test split."""
    dataset = load_dataset("digits")
    test = dataset.test.batch(256).map(lambda x, y: (tf.cast(x, tf.float32), y)).cache()
    config = DemoConfig(seeds=tuple(seeds), per_class=per_class, steps=steps)
    results = {row: [] for row in rows + methods}
    search_times = {m: [] for m in methods}
    cache_path = os.path.join(out, f"accuracies-{per_class}.json")  # a rerun skips finished arms
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    for seed in seeds:
        train = few_shot(dataset.train, per_class, seed=seed)
        data = DemoData(train, test, dataset.num_classes, dataset.image_shape)
        arms = {row: (None if row == "none" else from_spec(row, seed=seed, jit_compile=False))
                for row in rows}
        for method in methods:
            path = os.path.join(out, f"{method}-{per_class}-seed{seed}.json")
            with open(path) as f:
                search_times[method].append(json.load(f)["meta"]["wall_time_s"])
            arms[method] = AutoAugment(path, seed=seed, jit_compile=False)
        for row, augment in arms.items():
            key = f"{row} seed{seed} steps{steps}"
            if key not in cache:
                start = time.time()
                cache[key], _, _ = train_classifier(data, seed, config, augment)
                print(f"seed {seed} {row}: {cache[key]:.3f} ({time.time() - start:.0f}s)",
                      flush=True)
                with open(cache_path, "w") as f:
                    json.dump(cache, f, indent=1)
            results[row].append(cache[key])
    return {"results": results, "search_times": search_times}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--methods", nargs="*", default=["fast_aa"])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--rows", nargs="*", default=PUBLISHED)
    parser.add_argument("--out", default=os.path.join("runs", "search_table"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for per_class in args.per_class:  # searches first: their wall time is the one measured
        search_all(per_class, args.seeds, args.methods, args.minutes, args.out)
    for per_class in args.per_class:
        table = run(per_class, args.seeds, args.steps, args.methods, args.rows, args.out)
        with open(os.path.join(args.out, f"table-{per_class}.json"), "w") as f:
            json.dump(table, f, indent=1)
        print(f"\ndigits, {per_class} images/class, {args.steps} steps, {len(args.seeds)} seeds, "
              f"test on 797 images\n")
        print("| arm | test accuracy (mean ± std) | per seed | search wall time |")
        print("|---|---|---|---|")
        for row, accs in table["results"].items():
            a = np.asarray(accs)
            times = table["search_times"].get(row)
            wall = f"{np.mean(times) / 60:.1f} min" if times else "–"
            print(f"| {row} | {a.mean():.3f} ± {a.std():.3f} | "
                  f"{' '.join(f'{v:.3f}' for v in a)} | {wall} |", flush=True)


if __name__ == "__main__":
    main()
