"""Training own face GANs: configuration, the loop, losses, run directories and multi-process scale-out."""
