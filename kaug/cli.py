"""The `kaug` command. Each subcommand is an entry point of the group `kaug.commands` naming a
`register(subparsers)` function that adds a parser of the entry point's name with `func=` set.

Registration modules import TensorFlow only inside their `func`, so building the parser (and
`kaug --help`) stays fast and prints no TensorFlow start-up lines.
"""
from __future__ import annotations

import argparse
import sys

from kaug.plugins import COMMANDS, plugin_error, plugins


def build_parser() -> argparse.ArgumentParser:
    """The full `kaug` parser, with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="kaug", description="Train good image models from too little data (Keras 3 / TF)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for ep, register in plugins(COMMANDS):
        register(subparsers)
        if ep.name not in subparsers.choices:
            raise plugin_error(ep, f"did not add a subcommand named {ep.name!r}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `kaug` with `argv` (default sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"kaug {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
