"""Compress a full fine-tune into a LoRA adapter: a truncated SVD of each linear layer's weight change.

A Jacobi Forcing run that trains every weight (the CPU recipe does) changes 135M parameters a little each; shipping
them costs the model's full size. Each linear layer's change ``ΔW = W_tuned - W_base`` is written as ``B @ A`` of
rank ``r`` (the best rank-``r`` approximation, Eckart–Young), and the small parameters the adapter cannot factor
(normalisation weights) travel whole as PEFT ``modules_to_save``. The result is an ordinary PEFT LoRA model: it
saves as an adapter folder, loads with ``PeftModel.from_pretrained`` and merges with ``merge_and_unload``.

Embedding changes are left out: they are the largest tensors (the vocabulary times the hidden size), tied to the LM
head in small models (a LoRA on the input embedding would act on the head only once merged), and on the embedded
model dropping them kept Jacobi TPF (docs/end_to_end.md, "Shipping the trained model").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from torch import nn
from transformers import PreTrainedModel

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"


@dataclass
class LoraExtraction:
    """What :func:`extract_lora` made.

    Attributes:
        model: the base model (a copy) wrapped as a ``PeftModel`` whose adapter holds the rank-``r`` changes.
        rank: the LoRA rank ``r``.
        kept_energy: for each factored linear layer, the share of ``‖ΔW‖²`` the rank-``r`` factors keep (1.0 when
            the change has rank ``r`` or less).
        saved_whole: modules whose changed parameters travel whole (``modules_to_save``).
        dropped: changed parameters the adapter does not carry (embeddings, the LM head, biases of factored
            layers, anything else the adapter cannot express).
    """

    model: PeftModel
    rank: int
    kept_energy: dict[str, float] = field(default_factory=dict)
    saved_whole: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def mean_kept_energy(self) -> float:
        """The mean of ``kept_energy`` over the factored layers (1.0 when none changed)."""
        return sum(self.kept_energy.values()) / len(self.kept_energy) if self.kept_energy else 1.0


def extract_lora(
    base_model: PreTrainedModel,
    tuned_model: PreTrainedModel,
    *,
    rank: int,
) -> LoraExtraction:
    """Write ``tuned_model - base_model`` as a rank-``rank`` LoRA adapter on a copy of ``base_model``.

    Every ``nn.Linear`` whose weight changed, except the LM head, gets LoRA factors from the truncated SVD of its
    change (``lora_alpha = rank``, so the scaling is 1 and ``B @ A`` is the change itself). Other changed modules
    whose parameters are all vectors (normalisation layers) go to ``modules_to_save`` whole; the rest is listed in
    ``dropped``.

    Args:
        base_model: the model the adapter applies to. Left unchanged (a deep copy is wrapped).
        tuned_model: the fine-tuned model of the same architecture.
        rank: LoRA rank, at least 1.

    Raises:
        ValueError: when the two models' parameter names or shapes differ, or ``rank < 1``.

    Example:
        >>> extraction = extract_lora(base, tuned, rank=32)  # doctest: +SKIP
        >>> save_lora_adapter(extraction.model, "adapter/")  # doctest: +SKIP
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    base_params = dict(base_model.named_parameters())
    tuned_params = dict(tuned_model.named_parameters())
    _check_same_parameters(base_params, tuned_params)
    changed = {name for name, param in base_params.items() if not torch.equal(param, tuned_params[name])}

    embedding = base_model.get_input_embeddings()
    head = base_model.get_output_embeddings()
    factored: dict[str, nn.Module] = {}
    saved_whole: list[str] = []
    dropped: list[str] = []
    for module_name, module in base_model.named_modules():
        own = [f"{module_name}.{name}" if module_name else name for name, _ in module.named_parameters(recurse=False)]
        moved = [name for name in own if name in changed]
        if not moved:
            continue
        weight_name = f"{module_name}.weight"
        if isinstance(module, nn.Linear) and module is not head and weight_name in moved:
            factored[module_name] = module
            dropped += [name for name in moved if name != weight_name]
        elif module is not embedding and module is not head and all(base_params[n].dim() == 1 for n in own):
            saved_whole.append(module_name)
        else:
            dropped += moved

    config = LoraConfig(
        r=rank,
        lora_alpha=rank,
        lora_dropout=0.0,
        bias="none",
        target_modules=sorted(factored) or None,
        modules_to_save=sorted(saved_whole) or None,
    )
    peft_model = get_peft_model(copy.deepcopy(base_model), config)
    kept_energy = {}
    for module_name in factored:
        delta = (tuned_params[f"{module_name}.weight"] - base_params[f"{module_name}.weight"]).detach().float()
        lora_module = peft_model.base_model.model.get_submodule(module_name)
        kept_energy[module_name] = _set_lora_factors(lora_module, delta, rank)
    for module_name in saved_whole:
        wrapper = peft_model.base_model.model.get_submodule(module_name)
        tuned_module = tuned_model.get_submodule(module_name)
        wrapper.modules_to_save["default"].load_state_dict(tuned_module.state_dict())
    return LoraExtraction(peft_model.eval(), rank, kept_energy, saved_whole, sorted(dropped))


def save_lora_adapter(model: PeftModel, folder: str | Path, *, factor_dtype: torch.dtype = torch.bfloat16) -> Path:
    """Save ``model``'s adapter to ``folder`` with its LoRA factors in ``factor_dtype`` (default bfloat16).

    Whole-saved modules (normalisation weights) keep their own dtype: their changes are often below bfloat16's
    resolution near 1.0. The folder loads with ``PeftModel.from_pretrained(base, folder)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        name: tensor.detach().to(factor_dtype if ".lora_" in name else tensor.dtype).contiguous()
        for name, tensor in get_peft_model_state_dict(model, save_embedding_layers=False).items()
    }
    save_file(state, str(folder / ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
    model.peft_config["default"].save_pretrained(str(folder))
    return folder


def _check_same_parameters(base: dict[str, torch.Tensor], tuned: dict[str, torch.Tensor]) -> None:
    if base.keys() != tuned.keys():
        only = sorted(base.keys() ^ tuned.keys())[:5]
        raise ValueError(f"base and tuned models have different parameters (e.g. {only}): not the same architecture")
    mismatched = [name for name in base if base[name].shape != tuned[name].shape]
    if mismatched:
        raise ValueError(f"base and tuned parameter shapes differ for {mismatched[:5]}")


def _set_lora_factors(lora_module: nn.Module, delta: torch.Tensor, rank: int) -> float:
    """Fill ``lora_module``'s factors with the rank-``rank`` SVD of ``delta``; returns the share of energy kept.

    The singular values are split evenly (``B = U √S``, ``A = √S Vᵀ``) so both factors have the same scale; a rank
    above the change's own leaves the extra factor rows zero.
    """
    left, singular, right = torch.linalg.svd(delta, full_matrices=False)
    kept = min(rank, singular.numel())
    total = float((singular**2).sum())
    root = singular[:kept].sqrt()
    factor_b = torch.zeros(delta.shape[0], rank)
    factor_a = torch.zeros(rank, delta.shape[1])
    factor_b[:, :kept] = left[:, :kept] * root
    factor_a[:kept] = root[:, None] * right[:kept]
    with torch.no_grad():
        lora_module.lora_A["default"].weight.copy_(factor_a)
        lora_module.lora_B["default"].weight.copy_(factor_b)
    return float((singular[:kept] ** 2).sum()) / total if total > 0 else 1.0
