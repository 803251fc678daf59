"""Jacobi decoding: one engine (``engine.py``) behind ``generate(decoding=...)``, ``custom_generate`` and collection.

This folder is self-contained by design (it imports only torch, transformers and its own modules), so that
``export.write_custom_generate_folder`` can ship it as a Hub ``custom_generate/`` folder unchanged.
"""

from .config import JacobiConfig
from .hooks import BlockTrajectory, JacobiHooks, TrajectoryRecorder
from .mixin import JacobiGenerateOutput, JacobiGenerationMixin, enable_jacobi, jacobi_generate
from .stats import JacobiStats

__all__ = [
    "BlockTrajectory",
    "JacobiConfig",
    "JacobiGenerateOutput",
    "JacobiGenerationMixin",
    "JacobiHooks",
    "JacobiStats",
    "TrajectoryRecorder",
    "enable_jacobi",
    "jacobi_generate",
]
