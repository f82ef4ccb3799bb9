"""`kaug diagnose history.json`: name the regime of a finished run from its saved curves.

    kaug diagnose runs/fit/history.json --chance 0.1 --plot runs/fit/diagnosis.png
    kaug diagnose training.log          # a keras.callbacks.CSVLogger file
"""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug diagnose` to `subparsers`."""
    p = subparsers.add_parser(
        "diagnose", help="name the fitting regime (under/over/good fit) from a saved history",
        description="Read History.history saved as JSON (FitDiagnosis(history_path=...), "
                    "json.dump(history.history)) or a CSVLogger file; print the regime, the "
                    "evidence and what to do; write the learning curves with regimes shaded.")
    p.add_argument("history", help="history .json or CSVLogger .csv/.log file")
    p.add_argument("--metric", default=None, help="higher-is-better metric (default: accuracy)")
    p.add_argument("--chance", type=float, default=0.0,
                   help="the metric at chance level, e.g. 0.1 for accuracy on 10 classes")
    p.add_argument("--gap-threshold", type=float, default=0.1,
                   help="train - validation metric gap counted as overfitting (default 0.1)")
    p.add_argument("--plot", default=None,
                   help="PNG to write (default: next to the history, <name>_diagnosis.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand on parsed `args`; 0 when a regime was named, 1 when undetermined."""
    import os

    from keras_aug.diagnose.plot import plot_diagnosis
    from keras_aug.diagnose.regimes import UNDETERMINED, diagnose, load_history

    history = load_history(args.history)
    diagnosis = diagnose(history, metric=args.metric, chance=args.chance,
                         gap_threshold=args.gap_threshold)
    print(diagnosis.explain())
    if not args.no_plot and diagnosis.epoch_regimes:
        path = args.plot or os.path.splitext(args.history)[0] + "_diagnosis.png"
        print(f"wrote {plot_diagnosis(history, path, diagnosis)}")
    return 1 if diagnosis.regime == UNDETERMINED else 0
