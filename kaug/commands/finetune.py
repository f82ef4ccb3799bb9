"""`kaug finetune`: plan and run fine-tuning of a Keras Applications backbone on a dataset.

    kaug finetune --backbone MobileNetV2 --dataset folder:~/photos --weights imagenet
    kaug finetune --backbone DigitsCNN04 --dataset digits --per-class 10 --image-size 32
"""
from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kaug finetune` to `subparsers`."""
    p = subparsers.add_parser(
        "finetune", help="fine-tune a pretrained Keras Applications backbone (plan + phases)",
        description="Estimate similarity, plan which blocks to freeze, train the phases, keep the "
                    "best weights. Prints the plan's reasoning and the test accuracy.",
    )
    p.add_argument("--backbone", required=True, help="registry name, e.g. MobileNetV2, VGG16, DigitsCNN04")
    p.add_argument("--dataset", required=True, help="'digits', 'folder:PATH' or 'tfds:NAME'")
    p.add_argument("--weights", default="imagenet", help="'imagenet' (default, needs internet once), "
                   "'none', or PATH to a local weights file")
    p.add_argument("--image-size", type=int, default=None,
                   help="backbone input size (default: the backbone's minimum, at least 32)")
    p.add_argument("--per-class", type=int, default=None, help="use N training images per class")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of the training images held out to pick the best epoch (default 0.2)")
    p.add_argument("--similarity", default="auto",
                   help="'auto' (estimate_similarity), 'none' (assume similar) or a number in [0, 1]")
    p.add_argument("--head-epochs", type=int, default=30)
    p.add_argument("--finetune-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("runs", "finetune_cli"), help="output folder")
    p.add_argument("--plan-only", action="store_true", help="print the plan and stop")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import numpy as np
    import tensorflow as tf

    from finetune import estimate_similarity, fine_tune, get_spec, plan
    from keras_aug.data import dataset_to_numpy, few_shot, load_dataset

    spec = get_spec(args.backbone)
    size = args.image_size or max(spec.min_size, 32)
    weights = None if args.weights.lower() == "none" else args.weights
    if not 0.0 <= args.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    data = load_dataset(args.dataset)
    images, labels = dataset_to_numpy(data.train)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(images))
    n_val = int(round(args.val_fraction * len(images)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    train = tf.data.Dataset.from_tensor_slices((images[train_idx], labels[train_idx]))
    if args.per_class:
        train = few_shot(train, args.per_class, seed=args.seed)
    val = (tf.data.Dataset.from_tensor_slices((images[val_idx], labels[val_idx]))
           if n_val else None)
    n_train = int(train.cardinality())
    print(f"[finetune] {args.dataset}: {n_train} training images, {n_val} validation, "
          f"{data.num_classes} classes; backbone {args.backbone} at {size}x{size}, "
          f"weights={weights!r}", flush=True)
    if args.similarity == "auto":
        report = estimate_similarity(args.backbone, train, weights=weights,
                                     input_shape=(size, size, 3), details=True)
        similarity = report.score
        print(f"[finetune] similarity ({report.method}, {report.images} images): {similarity:.3f}")
    elif args.similarity.lower() == "none":
        similarity = None
    else:
        try:
            similarity = float(args.similarity)
        except ValueError:
            raise ValueError(f"--similarity must be 'auto', 'none' or a number in [0, 1], "
                             f"got {args.similarity!r}") from None
    p = plan(args.backbone, n_train, data.num_classes, similarity, weights=weights,
             input_shape=(size, size, 3), head_epochs=args.head_epochs,
             finetune_epochs=args.finetune_epochs)
    p.explain()
    if args.plan_only:
        return 0
    os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, "best.weights.h5")
    result = fine_tune(p, train, val, batch_size=args.batch_size, checkpoint_path=checkpoint,
                       seed=args.seed, verbose=2)
    print(f"[finetune] best {result.monitor} {result.best_value:.4f} at epoch {result.best_epoch + 1}; "
          f"weights in {checkpoint} ({result.seconds:.0f}s)")
    if data.test is not None:
        _, accuracy = result.model.evaluate(data.test.batch(256), verbose=0)
        print(f"[finetune] test accuracy: {accuracy:.4f}")
    return 0
