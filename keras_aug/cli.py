"""The `kaug` command. Each capability registers a subcommand from its own module: a module in
`SUBCOMMAND_MODULES` defines `register(subparsers)` that adds a parser with `func=` set."""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = [
    "keras_aug.cli_demo",
    "gan.cli",
    "finetune.cli",
    "keras_aug.adversarial.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaug", description="Train good image models from too little data (Keras 3 / TF)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"kaug {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
