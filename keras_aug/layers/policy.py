"""Policy layers (AutoAugment, RandAugment, TrivialAugmentWide, AugMix)."""
from __future__ import annotations

__all__: list[str] = []
