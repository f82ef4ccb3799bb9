"""The "searched policy" row of `kaug demo`: AutoAugment running the policy that `kaug search`
found on the demo's digits (shipped with the package; its command line is in the file)."""
from __future__ import annotations

from kaug.demo import DemoRow


def searched_policy(seed: int):
    from keras_aug.layers import AutoAugment
    from keras_aug.search import shipped_policy

    # 32x32 batches of 25: an XLA compile costs more than it saves
    return AutoAugment(shipped_policy("digits_fast_aa"), seed=seed, jit_compile=False)


def demo_rows() -> list[DemoRow]:
    return [DemoRow("searched policy (kaug search, fast_aa)", augment=searched_policy,
                    notes="searched on seed 0's 100 training digits; the test split was never read")]
