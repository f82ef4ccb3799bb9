"""`kaug demo` and `kaug preview`."""
from __future__ import annotations


def register(subparsers) -> None:
    demo = subparsers.add_parser("demo", help="few-shot digits: accuracy with and without augmentation")
    demo.add_argument("--quick", action="store_true", help="1-minute smoke run (1 seed, short)")
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    demo.add_argument("--steps", type=int, default=800,
                      help="optimizer steps per run (default 800; 2400 shows augmentation's gain, "
                           "~3x the time)")
    demo.add_argument("--all", action="store_true",
                      help="every row: policies, mixing, PuzzleMix, GAN samples, fine-tuning "
                           "(~20 min on 2 cores; the default core rows take ~5)")
    demo.set_defaults(func=_demo)

    preview = subparsers.add_parser("preview", help="PNG grid of a layer or policy on real images")
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--layer", help="a keras_aug.layers name, e.g. RandomAffine or CutMix")
    which.add_argument("--policy", help="a policy spec, e.g. rand-m9-n2 or autoaugment-cifar10")
    preview.add_argument("--args", help='layer arguments as JSON, e.g. \'{"rotation": 0.1}\'')
    preview.add_argument("--image", default="astronaut",
                         help="astronaut | coffee | chelsea | digits | PATH (default astronaut)")
    preview.add_argument("--size", type=int, help="image side (default 128; digits 32)")
    preview.add_argument("--out", default="runs/preview.png", help="PNG path")
    preview.set_defaults(func=_preview)


def _demo(args) -> int:
    from keras_aug.demo import DemoConfig, run_demo

    if args.quick:
        config = DemoConfig.quick_config(args.out)
    else:
        if args.steps < 10:
            raise ValueError(f"--steps must be >= 10, got {args.steps}")
        config = DemoConfig(seeds=tuple(range(args.seeds)), steps=args.steps, out_dir=args.out,
                            all_rows=args.all)
    run_demo(config)
    return 0


def _preview(args) -> int:
    from keras_aug.preview import load_preview_images, make_layer, preview

    layer = make_layer(args.layer, args.policy, args.args)
    images, labels, num_classes = load_preview_images(args.image, args.size)
    path = preview(layer, images, labels, num_classes, args.out)
    print(f"Wrote {path}")
    return 0
