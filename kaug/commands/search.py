"""`kaug search`: find the augmentation policy suited to a dataset.

    kaug search --dataset digits --per-class 10 --method fast_aa --minutes 10 --out policy.json
    kaug search --dataset folder:~/photos --minutes 30 --out runs/search/policy.json --resume
"""
from __future__ import annotations

import argparse

METHOD_NAMES = ("fast_aa", "pba", "autoaugment", "faster_aa")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug search` to `subparsers`."""
    p = subparsers.add_parser(
        "search", help="search an augmentation policy for a dataset (Fast AutoAugment, PBA, ...)",
        description="Search an AutoAugment-format policy on the dataset's train split (its test "
                    "split is never read) and write it with a report and a PNG of the trials. "
                    "Apply it with keras_aug.layers.AutoAugment(PATH) or kaug preview --policy PATH.")
    p.add_argument("--dataset", default="digits",
                   help="digits | folder:PATH | tfds:NAME (default digits)")
    p.add_argument("--per-class", type=int, default=None,
                   help="use K images per class of the train split (default: all)")
    p.add_argument("--method", choices=METHOD_NAMES, default="fast_aa",
                   help="fast_aa (default), pba, autoaugment or faster_aa")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget (default 10)")
    p.add_argument("--out", default="policy.json", help="policy JSON to write (default policy.json)")
    p.add_argument("--workdir", default=None,
                   help="where the search keeps its state (default: <out stem>.search/)")
    p.add_argument("--resume", action="store_true",
                   help="continue the search kept in --workdir (finished trials are not repeated)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child-steps", type=int, default=400,
                   help="optimizer steps of each child model (default 400)")
    p.add_argument("--ops", nargs="+", default=None,
                   help="registry ops to search over (default: AutoAugment's 15)")
    p.add_argument("--sub-policies", type=int, default=5,
                   help="sub-policies per candidate (default 5)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. --option folds=5 --option trials=200 (fast_aa), "
                        "--option population=8 (pba); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict:
    """`["folds=5", "draws=2.5"]` -> `{"folds": 5, "draws": 2.5}` (ints, floats, true/false)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option must be KEY=VALUE, got {pair!r}")
        for cast in (int, float):
            try:
                options[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            options[key] = {"true": True, "false": False}.get(value.lower(), value)
    return options


def command_line(args: argparse.Namespace) -> str:
    """The `kaug search` command that repeats this search (recorded in the policy file)."""
    import shlex

    parts = ["kaug", "search", "--dataset", args.dataset, "--method", args.method,
             "--minutes", f"{args.minutes:g}", "--seed", str(args.seed),
             "--child-steps", str(args.child_steps), "--sub-policies", str(args.sub_policies),
             "--out", args.out]
    if args.per_class is not None:
        parts += ["--per-class", str(args.per_class)]
    if args.ops:
        parts += ["--ops", *args.ops]
    for pair in args.option:
        parts += ["--option", pair]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand on parsed `args`."""
    import inspect
    import os

    from keras_aug.search import SEARCH_OPS, ChildConfig, SearchSpace, SearchTask, search_policy
    from keras_aug.search.api import METHODS

    options = parse_options(args.option)
    import importlib

    accepted = inspect.signature(importlib.import_module(METHODS[args.method]).search).parameters
    unknown = sorted(set(options) - set(accepted) - {"task"})
    if unknown:
        own = [n for n, p in accepted.items() if p.kind == p.KEYWORD_ONLY and n not in (
            "minutes", "seed", "workdir", "resume", "progress")]
        raise ValueError(f"--option {', '.join(unknown)}: not a setting of {args.method}; "
                         f"its settings are {own}")
    space = SearchSpace(ops=tuple(args.ops or SEARCH_OPS), num_sub_policies=args.sub_policies)
    task = SearchTask.from_dataset(args.dataset, per_class=args.per_class, seed=args.seed,
                                   space=space, child=ChildConfig(steps=args.child_steps))
    workdir = args.workdir or os.path.splitext(args.out)[0] + ".search"
    print(f"searching {args.method} on {len(task.images)} images of {args.dataset} "
          f"({task.num_classes} classes) for at most {args.minutes:g} min; state in {workdir}",
          flush=True)
    result = search_policy(task, args.method, minutes=args.minutes, seed=args.seed,
                           workdir=workdir, resume=args.resume, progress=not args.no_progress,
                           **options)
    written = result.save(args.out, command=command_line(args))
    report = result.report
    print(f"{len(report.trials)} trials in {report.wall_time_s / 60:.1f} min"
          + (" (stopped at the time budget)" if report.stopped_early else "")
          + f"; {len(result.policy.sub_policies)} sub-policies")
    for path in written:
        print(f"wrote {path}")
    return 0
