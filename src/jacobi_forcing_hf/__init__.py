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
    "use_onednn_linear": "onednn",
    # decoding
    "enable_jacobi": "generation.mixin",
    "jacobi_generate": "generation.mixin",
    "JacobiGenerationMixin": "generation.mixin",
    "JacobiGenerateOutput": "generation.mixin",
    "JacobiConfig": "generation.config",
    "JacobiStats": "generation.stats",
    "JacobiHooks": "generation.hooks",
    "TrajectoryRecorder": "generation.hooks",
    "BlockTrajectory": "generation.hooks",
    "write_custom_generate_folder": "generation.export",
    "NgramTable": "generation.ngram_table",
    "generate_greedy_outputs": "ngram_corpus",
    # data (issue 5)
    "collect_trajectories": "trajectories",
    "load_trajectories": "trajectories",
    "build_training_sequences": "data.packing",
    "noise_schedule": "data.noise",
    "load_prompts": "data.prompts",
    "load_stdlib_prompts": "data.prompts",
    # training (issue 6)
    "JacobiForcingDataCollator": "data.collator",
    "JacobiForcingConfig": "training.config",
    "JacobiForcingTrainer": "training.trainer",
    "TPFCallback": "training.callbacks",
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
    # hub
    "push_dataset": "hub",
    "push_trajectories": "hub",
    "push_training_data": "hub",
    "collection_facts": "hub",
    "push_checkpoint": "hub",
    "prepare_checkpoint_folder": "hub",
    "build_model_card": "hub",
    "jacobi_generation_config": "hub",
    "HubPushError": "hub",
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
