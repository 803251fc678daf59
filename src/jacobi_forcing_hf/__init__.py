"""jacobi-forcing-hf: Jacobi Forcing for HuggingFace models.

Lossless Jacobi and multiblock + rejection-recycling decoding inside ``model.generate``, trajectory collection and
noise-scheduled packing as ``datasets``, a TRL ``SFTTrainer`` subclass for Jacobi Forcing post-training, an
evaluation harness and Hub utilities.

The public API is re-exported here lazily, so ``import jacobi_forcing_hf`` stays fast and a command that needs only
one part does not import the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    # foundation
    "load_default_model": "models",
    "convert_gguf_to_safetensors": "models",
    "EmbeddedModelMissingError": "models",
    # evaluation
    "evaluate_model": "evaluation.quality",
    "load_task_problems": "evaluation.quality",
    "benchmark_speed": "evaluation.bench",
    "run_sweep": "evaluation.sweep",
    "SweepGrid": "evaluation.sweep",
    "JacobiKnobs": "evaluation.speed",
    "ForwardCounter": "evaluation.speed",
    "write_reports": "evaluation.report",
    "EvaluationInputError": "evaluation.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'jacobi_forcing_hf' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
