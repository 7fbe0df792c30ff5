"""Training: data, stages, trainer, checkpoints, engines."""
