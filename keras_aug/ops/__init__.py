"""Pure batched TF functions `(images, params) -> images`: no Keras state, no randomness inside.

One module per family: geometry, color, erase, mix. Images are float32 (B, H, W, C) in the
caller's value range; parameters are per-sample tensors with leading dimension B.
"""
