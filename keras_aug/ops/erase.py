"""erase ops (see keras_aug/ops/__init__.py for conventions)."""
from __future__ import annotations

import tensorflow as tf
