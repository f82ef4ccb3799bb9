"""`kaug demo` row: fine-tuned from a pretrained backbone.

The backbone is the shipped DigitsCNN04, pretrained on the digits 0-4 images of the *train* split
only (~500 images; never the test split, never a label of 5-9). So this row uses more data than
the others (that is the point of transfer) and its name says so. Per seed: similarity estimate,
`plan()`, `fine_tune` on the 10-per-class subset with the frozen front cached; the best epoch is
picked on the training loss (the test split is used only for the final accuracy).
"""
from __future__ import annotations


from kaug.demo import DemoConfig, DemoData, DemoRow

ROW_NAME = "fine-tuned from a pretrained backbone (DigitsCNN04, pretrained on train-split digits 0-4)"


def run_finetune_row(data: DemoData, seed: int, config: DemoConfig) -> tuple[float, dict]:
    from finetune import build_backbone, estimate_similarity, fine_tune, plan

    shape = (32, 32, 3)
    n = int(data.train.cardinality())
    similarity = estimate_similarity(build_backbone("DigitsCNN04", input_shape=shape), data.train,
                                     max_images=100)
    p = plan("DigitsCNN04", n, data.num_classes, similarity, input_shape=shape,
             head_epochs=40, finetune_epochs=3 if config.quick else 10)
    # No validation data: the best epoch is picked on the training loss, never on the test split.
    result = fine_tune(p, data.train, None, cache_frozen_features=True, seed=seed, verbose=0,
                       batch_size=config.batch_size)
    _, accuracy = result.model.evaluate(data.test, verbose=0)
    history = dict(result.history)
    history["similarity"] = [similarity]
    return float(accuracy), history


def demo_rows() -> list[DemoRow]:
    return [DemoRow(ROW_NAME, run=run_finetune_row,
                    notes="head/blocks chosen by finetune.plan; backbone saw ~500 extra images")]
