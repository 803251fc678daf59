"""extract_lora / save_lora_adapter: a full fine-tune's change as LoRA factors, saved small and loaded by PEFT."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from torch import nn

from jacobi_forcing_hf.training.lora_extraction import ADAPTER_WEIGHTS_NAME, extract_lora, save_lora_adapter
from tiny_models import build_tiny_model, random_prompts

CHANGE_RANK = 2


def _fine_tuned(base: nn.Module, *, seed: int = 1) -> nn.Module:
    """``base`` with a rank-2 change on every linear layer (LM head included), its norms and its embedding moved."""
    generator = torch.Generator().manual_seed(seed)
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if param.dim() == 2 and "embed" not in name:
                left = torch.randn(param.shape[0], CHANGE_RANK, generator=generator)
                right = torch.randn(CHANGE_RANK, param.shape[1], generator=generator)
                param += 0.05 * left @ right
            else:
                param += 0.05 * torch.randn(param.shape, generator=generator)
    return tuned


@pytest.fixture(scope="module")
def models() -> tuple[nn.Module, nn.Module]:
    base = build_tiny_model("llama").eval()
    return base, _fine_tuned(base).eval()


def test_a_change_of_rank_r_is_carried_exactly_except_embedding_and_head(models):
    base, tuned = models
    before = {name: param.clone() for name, param in base.named_parameters()}
    extraction = extract_lora(base, tuned, rank=CHANGE_RANK)
    merged = copy.deepcopy(extraction.model).merge_and_unload()
    base_params, tuned_params = dict(base.named_parameters()), dict(tuned.named_parameters())
    for name, param in merged.named_parameters():
        expected = base_params[name] if name in extraction.dropped else tuned_params[name]
        torch.testing.assert_close(param, expected, rtol=0, atol=1e-5, msg=name)
    assert extraction.dropped == ["lm_head.weight", "model.embed_tokens.weight"]
    assert len(extraction.kept_energy) == 2 * 7 and extraction.mean_kept_energy == pytest.approx(1.0)
    assert "model.norm" in extraction.saved_whole and len(extraction.saved_whole) == 2 * 2 + 1
    assert all(torch.equal(param, before[name]) for name, param in base.named_parameters())  # base left alone


def test_a_lower_rank_keeps_the_leading_singular_directions(models):
    base, tuned = models
    extraction = extract_lora(base, tuned, rank=1)
    name = "model.layers.0.mlp.down_proj"
    delta = (tuned.get_submodule(name).weight - base.get_submodule(name).weight).detach()
    left, singular, right = torch.linalg.svd(delta)
    best_rank_one = singular[0] * torch.outer(left[:, 0], right[0])
    lora = extraction.model.base_model.model.get_submodule(name)
    factored = lora.lora_B["default"].weight @ lora.lora_A["default"].weight
    torch.testing.assert_close(factored, best_rank_one, rtol=0, atol=1e-5)
    share = float(singular[0] ** 2 / (singular**2).sum())
    assert extraction.kept_energy[name] == pytest.approx(share, rel=1e-4) and share < 0.99


def test_the_saved_adapter_is_bfloat16_factors_and_loads_back_with_peft(models, tmp_path):
    base, tuned = models
    extraction = extract_lora(base, tuned, rank=CHANGE_RANK)
    folder = save_lora_adapter(extraction.model, tmp_path / "adapter")
    dtypes = {name: tensor.dtype for name, tensor in load_file(folder / ADAPTER_WEIGHTS_NAME).items()}
    assert {dtype for name, dtype in dtypes.items() if ".lora_" in name} == {torch.bfloat16}
    assert {dtype for name, dtype in dtypes.items() if ".lora_" not in name} == {torch.float32}  # norms stay exact

    loaded = PeftModel.from_pretrained(copy.deepcopy(base), folder).eval()
    prompts = random_prompts(2, 12)
    with torch.no_grad():
        expected = extraction.model(prompts).logits
        got = loaded(prompts).logits
        untouched = base(prompts).logits
    assert (got - expected).abs().max() < 0.1 * (expected - untouched).abs().max()


def test_models_of_different_shapes_or_a_rank_below_one_are_refused(models):
    base, tuned = models
    with pytest.raises(ValueError, match="rank must be >= 1"):
        extract_lora(base, tuned, rank=0)
    with pytest.raises(ValueError, match="different parameters"):
        extract_lora(base, build_tiny_model("qwen3"), rank=2)


def test_extract_lora_command_writes_an_adapter_and_refuses_a_bad_rank(models, tmp_path, capsys):
    from jacobi_forcing_hf.cli import main

    base, tuned = models
    base.save_pretrained(tmp_path / "base")
    tuned.save_pretrained(tmp_path / "tuned")
    arguments = ["extract-lora", str(tmp_path / "tuned"), "--base", str(tmp_path / "base"), "--output-dir"]
    assert main([*arguments, str(tmp_path / "bad"), "--rank", "0"]) == 2
    assert "--rank must be >= 1" in capsys.readouterr().err and not (tmp_path / "bad").exists()

    assert main([*arguments, str(tmp_path / "adapter"), "--rank", str(CHANGE_RANK)]) == 0
    assert "mean energy kept 1.000" in capsys.readouterr().out
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "adapter")
    assert loaded.peft_config["default"].base_model_name_or_path == str(tmp_path / "base")
