"""Standard vs PGD vs fast-FGSM vs TRADES training on the embedded digits: clean accuracy,
PGD-20 robust accuracy at ε = 0.1 of the range, and time per epoch. Writes the README table and
docs/adversarial_*.png.

    python examples/adversarial_table.py             # 1 seed, about 3-4 min on 2 shared cores
    python examples/adversarial_table.py --seeds 3   # mean ± std over seeds 0, 1, 2
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from keras_aug.adversarial import save_adversarial_examples
from kaug.adversarial_experiment import ExperimentConfig, load_arrays, run_experiment

EPS = 25.5  # 0.1 x 255: ~1.6 of the 16 grey levels the 8x8 digit scans were quantised to
MODES = {  # row name -> ExperimentConfig overrides
    "standard": dict(mode="standard"),
    "PGD-7 (Madry)": dict(mode="pgd", steps=7),
    "fast FGSM (Wong)": dict(mode="fast_fgsm"),
    "TRADES-7, β=6": dict(mode="trades", steps=7),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()

    arrays = load_arrays("digits")
    results: dict[str, list[dict]] = {name: [] for name in MODES}
    start = time.time()
    for seed in range(args.seeds):
        for name, overrides in MODES.items():
            config = ExperimentConfig(eps=EPS, epochs=args.epochs, seed=seed, **overrides)
            t0 = time.time()
            run = run_experiment(config, arrays)
            clean, fgsm_row, pgd_row = run["rows"]
            results[name].append(dict(clean=clean["accuracy"], fgsm=fgsm_row["accuracy"],
                                      pgd=pgd_row["accuracy"], wall=run["epoch_wall_s"],
                                      cpu=run["epoch_cpu_s"], collapsed=run["overfit_triggered"]))
            print(f"seed {seed} {name:18s} clean {clean['accuracy']:.3f}  FGSM "
                  f"{fgsm_row['accuracy']:.3f}  PGD-20 {pgd_row['accuracy']:.3f}  "
                  f"{run['epoch_wall_s']:.2f} s/epoch wall, {run['epoch_cpu_s']:.2f} CPU-s/epoch"
                  f"{'  (overfitting guard fired)' if run['overfit_triggered'] else ''}  "
                  f"[{time.time() - t0:.0f}s]", flush=True)
            if seed == 0 and config.mode in ("standard", "fast_fgsm"):
                x_test, y_test = run["test"]
                pick = np.concatenate([np.flatnonzero(y_test == c)[:1] for c in range(8)])
                save_adversarial_examples(
                    run["model"], x_test[pick], y_test[pick],
                    os.path.join(args.out, f"adversarial_{config.mode}.png"), EPS,
                    attack="pgd-20", from_logits=True)
    print(table(results, args))
    print(f"total {time.time() - start:.0f}s")


def table(results: dict[str, list[dict]], args) -> str:
    def stat(values, fmt="{:.3f}"):
        values = np.asarray(values)
        if len(values) == 1:
            return fmt.format(values[0])
        return f"{fmt.format(values.mean())} ± {fmt.format(values.std())}"

    base_cpu = np.mean([r["cpu"] for r in results["standard"]])
    lines = [
        f"digits (1000 train / 797 test, 32x32), {args.epochs} epochs, batch 32, "
        f"{args.seeds} seed(s), ε = {EPS:g}/255 (L∞)",
        "",
        "| training | clean acc | FGSM acc | PGD-20 acc | s/epoch (wall) | CPU-s/epoch | "
        "× standard (CPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        cpu = [r["cpu"] for r in runs]
        collapsed = sum(r["collapsed"] for r in runs)
        lines.append(
            f"| {name}{f' (guard fired {collapsed}×)' if collapsed else ''} | "
            f"{stat([r['clean'] for r in runs])} | {stat([r['fgsm'] for r in runs])} | "
            f"{stat([r['pgd'] for r in runs])} | {stat([r['wall'] for r in runs], '{:.2f}')} | "
            f"{stat(cpu, '{:.2f}')} | {np.mean(cpu) / base_cpu:.1f}× |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
