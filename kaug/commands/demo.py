"""`kaug demo`: the few-shot digits table (rows from the `kaug.demo_rows` entry points)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug demo` to `subparsers`."""
    demo = subparsers.add_parser("demo", help="few-shot digits: accuracy with and without augmentation")
    demo.add_argument("--quick", action="store_true", help="1-minute smoke run (1 seed, short)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    demo.add_argument("--steps", type=int, default=800,
                      help="optimizer steps per run of the fixed rows (default 800; 2400 shows "
                           "augmentation's gain, ~3x the time); the recipe row decides its own")
    demo.add_argument("--full", action="store_true",
                      help="every component's row: policies, mixing, PuzzleMix, GAN samples, "
                           "fine-tuning, adaptive (~25 min on 2 cores; the default rows take ~5)")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from kaug.demo import DemoConfig, run_demo

    if args.quick:
        config = DemoConfig.quick_config(args.out)
    else:
        if args.steps < 10:
            raise ValueError(f"--steps must be >= 10, got {args.steps}")
        config = DemoConfig(seeds=tuple(range(args.seeds)), steps=args.steps, out_dir=args.out,
                            all_rows=args.full)
    run_demo(config)
    return 0
