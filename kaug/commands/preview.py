"""`kaug preview`: a PNG grid of a layer or policy on real images."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug preview` to `subparsers`."""
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


def _preview(args: argparse.Namespace) -> int:
    from kaug.preview import load_preview_images, make_layer, preview

    layer = make_layer(args.layer, args.policy, args.args)
    images, labels, num_classes = load_preview_images(args.image, args.size)
    path = preview(layer, images, labels, num_classes, args.out)
    print(f"Wrote {path}")
    return 0
