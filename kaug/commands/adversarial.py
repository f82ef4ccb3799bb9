"""`kaug adversarial`: train a small CNN adversarially, print clean/robust accuracy, write the
table, a picture of adversarial examples and the plain model."""
from __future__ import annotations

import argparse
import os
import sys


# The choices are spelled out, not imported: importing the trainer would load TensorFlow just
# to build `kaug --help`. tests/test_cli.py checks they equal EXPERIMENT_MODES.
MODES = ("standard", "pgd", "fast_fgsm", "trades")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug adversarial` to `subparsers`."""
    parser = subparsers.add_parser(
        "adversarial",
        help="adversarial training (pgd, fast_fgsm, trades) and robustness evaluation",
        description="Train a small CNN with adversarial examples and measure its robustness. "
        "Budgets are in pixel units of 0..255 images (25.5 = 0.1 of the range).",
    )
    parser.add_argument("--dataset", default="digits",
                        help="'digits', 'folder:PATH' (with train/ and test/) or 'tfds:NAME'")
    parser.add_argument("--mode", default="fast_fgsm", choices=MODES,
                        help="training mode (default fast_fgsm; 'standard' = no attack)")
    parser.add_argument("--eps", type=float, default=25.5,
                        help="L∞ budget in 0..255 units for training and evaluation (default 25.5)")
    parser.add_argument("--eval-eps", type=float, nargs="+", default=None,
                        help="budgets to evaluate at (default: --eps)")
    parser.add_argument("--eval-attacks", nargs="+", default=["fgsm", "pgd-20"],
                        help="attacks to evaluate: fgsm, pgd-K (default: fgsm pgd-20)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=None,
                        help="attack steps in training (default 7 for pgd, 10 for trades)")
    parser.add_argument("--beta", type=float, default=6.0, help="TRADES' KL weight")
    parser.add_argument("--ratio", type=float, default=0.0,
                        help="clean fraction of each batch (pgd/fast_fgsm)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "adversarial"),
                        help="output folder (default runs/adversarial)")
    parser.set_defaults(func=_adversarial)


def _adversarial(args) -> int:
    from keras_aug.adversarial.evaluation import format_robustness_table, save_adversarial_examples
    from kaug.adversarial_experiment import ExperimentConfig, run_experiment

    config = ExperimentConfig(
        dataset=args.dataset, mode=args.mode, eps=args.eps, epochs=args.epochs,
        batch_size=args.batch_size, steps=args.steps, beta=args.beta, ratio=args.ratio,
        eval_eps=tuple(args.eval_eps or ()), eval_attacks=tuple(args.eval_attacks), seed=args.seed,
        verbose=1 if sys.stdout.isatty() else 2,  # progress bar, or one line per epoch in logs
    )
    print(f"kaug adversarial: {config.mode} training on {config.dataset}, ε = {config.eps:g}/255, "
          f"{config.epochs} epochs", flush=True)
    run = run_experiment(config)
    table = format_robustness_table(run["rows"])
    summary = (f"{config.mode} on {config.dataset}: {run['epoch_wall_s']:.2f} s/epoch wall, "
               f"{run['epoch_cpu_s']:.2f} CPU-s/epoch"
               + (" (catastrophic-overfitting guard fired: best weights restored)"
                  if run["overfit_triggered"] else ""))
    print(table)
    print(summary)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(summary + "\n\n" + table + "\n")
    x_test, y_test = run["test"]
    picture = save_adversarial_examples(run["model"], x_test[:8], y_test[:8],
                                        os.path.join(args.out, "adversarial_examples.png"),
                                        config.eps, attack=config.eval_attacks[-1],
                                        from_logits=True, seed=config.seed)
    model_path = os.path.join(args.out, "model.keras")
    run["model"].save(model_path)
    print(f"Wrote {args.out}/results.md, {os.path.basename(picture)}, model.keras")
    return 0
