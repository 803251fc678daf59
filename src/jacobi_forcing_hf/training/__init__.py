"""Jacobi Forcing training: ``JacobiForcingConfig``, the losses, ``JacobiForcingTrainer`` and its TPF callback."""
