"""`kaug train`: from a folder of labelled images to an exported model, with every choice explained.

    kaug train --data folder:~/photos --minutes 20 --out runs/photos
    kaug train --data digits --per-class 10 --minutes 3 --out runs/digits
"""
from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug train` to `subparsers`."""
    p = subparsers.add_parser(
        "train", help="train the best model kaug can for your images, explain why, export it",
        description="Decide (model, augmentation, label smoothing, mixing, steps) from the data "
                    "and the budget, validate every choice on held-out training images, train, "
                    "and write model.keras, a serving SavedModel, report.md and PNGs to --out.")
    p.add_argument("--data", default="digits",
                   help="folder:PATH (one subfolder per class) | tfds:NAME | digits")
    p.add_argument("--per-class", type=int, default=None,
                   help="use K training images per class (default: all)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="wall-clock budget for everything (default 10)")
    p.add_argument("--backbone", default="auto",
                   help="auto (decide) | none (a CNN from scratch) | a Keras Applications name")
    p.add_argument("--weights", default="imagenet",
                   help="backbone weights: imagenet (downloaded once) or a local file")
    p.add_argument("--search", choices=("auto", "always", "never"), default="auto",
                   help="search a policy with fast_aa: when the budget allows (auto), always, never")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per run of the CNN from scratch (default: from the data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/train", help="output folder (default runs/train)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keras_aug.recipe import train

    result = train(args.data, per_class=args.per_class, minutes=args.minutes,
                   backbone=args.backbone, weights=args.weights, seed=args.seed, out=args.out,
                   search=args.search, steps=args.steps, progress=not args.no_progress)
    report = result.report
    print(report.explain())
    line = f"validation accuracy {report.validation['accuracy']:.3f}"
    if report.test is not None:
        line += f", test accuracy {report.test['accuracy']:.3f}"
    print(f"{line} ({report.seconds:.0f} s). Wrote {args.out}/: " +
          ", ".join(sorted(os.path.basename(p) for p in report.files.values())))
    return 0
