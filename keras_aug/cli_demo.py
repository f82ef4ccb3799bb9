"""`kaug demo` and `kaug preview`."""
from __future__ import annotations


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="few-shot digits: accuracy with and without augmentation")
    demo.add_argument("--quick", action="store_true", help="1-minute smoke run (1 seed, short)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    demo.set_defaults(func=_demo)


def _demo(args) -> int:
    from keras_aug.demo import DemoConfig, run_demo

    if args.quick:
        config = DemoConfig.quick_config(args.out)
    else:
        config = DemoConfig(seeds=tuple(range(args.seeds)), out_dir=args.out)
    run_demo(config)
    return 0
