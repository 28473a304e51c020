"""Training loop, losses, checkpoints state, splits, distributed."""
