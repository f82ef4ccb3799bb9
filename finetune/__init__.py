"""kaug finetune: reuse a pretrained Keras Applications backbone on a small dataset.

    from finetune import estimate_similarity, plan, fine_tune
    s = estimate_similarity("MobileNetV2", train_ds, input_shape=(96, 96, 3))
    p = plan("MobileNetV2", dataset_size=500, num_classes=5, similarity=s, input_shape=(96, 96, 3))
    p.explain()
    result = fine_tune(p, train_ds, val_ds, checkpoint_path="best.weights.h5")

`plan` also takes your own functional or Sequential keras.Model as the backbone (say how it
scales its input with `preprocess=`): `plan(my_cnn, 500, 5, preprocess="unit")`.
"""
from keras_aug import backend as _backend  # noqa: F401

from finetune.plan import FinetunePlan, Phase, plan
from finetune.registry import (
    REGISTRY,
    Backbone,
    BackboneSpec,
    Preprocess,
    backbone_from_model,
    build_backbone,
    get_spec,
    list_backbones,
    register_backbone,
)
from finetune.similarity import SimilarityReport, adapt_batchnorm, estimate_similarity
from finetune.trainer import FinetuneResult, fine_tune

__all__ = [
    "REGISTRY", "Backbone", "BackboneSpec", "Preprocess", "backbone_from_model", "build_backbone",
    "get_spec", "list_backbones", "register_backbone", "estimate_similarity", "SimilarityReport",
    "adapt_batchnorm", "plan", "FinetunePlan", "Phase", "fine_tune", "FinetuneResult",
]
