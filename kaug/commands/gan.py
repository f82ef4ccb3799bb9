"""`kaug gan train` and `kaug gan sample`."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug gan train` and `kaug gan sample` to `subparsers`."""
    gan = subparsers.add_parser("gan", help="class-conditional GAN sample generator (DiffAugment)")
    commands = gan.add_subparsers(dest="gan_command", required=True)

    train = commands.add_parser("train", help="train a GAN; checkpoints, sample grids, --resume")
    train.add_argument("--dataset", default="digits", help="load_dataset spec (default digits)")
    train.add_argument("--per-class", type=int, default=None,
                       help="train on a few-shot subset of N images per class (default: all)")
    train.add_argument("--subset-seed", type=int, default=0, help="seed of the few-shot subset")
    train.add_argument("--steps", type=int, default=2000, help="total training steps (default 2000)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--out", required=True, help="run folder (checkpoints, samples/)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    train.add_argument("--checkpoint-every", type=int, default=250)
    train.add_argument("--sample-every", type=int, default=None,
                       help="steps between sample grid PNGs (default: --checkpoint-every; 0: none)")
    train.add_argument("--policy", default="color,translation,cutout",
                       help="DiffAugment ops, comma separated ('' or 'none' disables)")
    train.add_argument("--ada-target", type=float, default=None,
                       help="adaptive augmentation probability with this r_t target (ADA uses 0.6)")
    train.add_argument("--seed", type=int, default=0, help="GAN seed (weights, noise, batches)")
    train.add_argument("--diversity-weight", type=float, default=0.3,
                       help="mode-seeking term against within-class collapse (MSGAN; 0 disables)")
    train.add_argument("--aux-weight", type=float, default=1.0,
                       help="weight of the auxiliary class loss (AC-GAN head)")
    train.set_defaults(func=_train)

    sample = commands.add_parser("sample", help="write a grid of samples (and optionally a SavedModel)")
    sample.add_argument("--checkpoint", required=True,
                        help="run folder, SavedModel folder or .weights.h5 (with its .json)")
    sample.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    sample.add_argument("--label", type=int, default=None, help="only this class (default: balanced)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="noise scale: < 1 more typical samples, > 1 more diverse (default 1)")
    sample.add_argument("--out", default="gan_samples.png", help="grid PNG path")
    sample.add_argument("--export", default=None, help="also export the generator SavedModel here")
    sample.set_defaults(func=_sample)


def _train(args: argparse.Namespace) -> int:
    from keras_aug.data import few_shot, load_dataset
    from gan.trainer import train_gan

    data = load_dataset(args.dataset)
    train = data.train
    if args.per_class is not None:
        train = few_shot(train, args.per_class, seed=args.subset_seed)
    policy = () if args.policy.strip().lower() in ("", "none") else args.policy
    result = train_gan(
        train, args.out, steps=args.steps, batch_size=args.batch_size,
        checkpoint_every=args.checkpoint_every, sample_every=args.sample_every,
        resume=args.resume, policy=policy, ada_target=args.ada_target, seed=args.seed,
        diversity_weight=args.diversity_weight, aux_weight=args.aux_weight,
        extra={"dataset": args.dataset, "per_class": args.per_class, "subset_seed": args.subset_seed,
               "image_dtype": "uint8"},
    )
    step = int(result.gan.step_counter.numpy())
    print(f"kaug gan: step {step}; checkpoints in {args.out}/checkpoints, grids in {args.out}/samples")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from keras_aug.viz import save_image_grid
    from gan.sampler import SampleGenerator

    sampler = SampleGenerator.load(args.checkpoint)
    images, labels = sampler.sample(args.n, labels=args.label, seed=args.seed,
                                    temperature=args.temperature)
    save_image_grid(images, args.out, titles=[str(k) for k in labels], ncols=min(10, args.n),
                    value_range=sampler.config.value_range)
    print(f"kaug gan: wrote {args.n} samples to {args.out}")
    if args.export:
        sampler.export(args.export)
        print(f"kaug gan: exported the generator SavedModel to {args.export}")
    return 0
