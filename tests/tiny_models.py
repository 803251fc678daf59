"""Tiny random decoder-only models of many architectures, built from configs (no download).

Weights use a large initialiser range so that greedy continuations wander through the vocabulary instead of
repeating one token: losslessness tests are only meaningful when the argmax changes from position to position.
"""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PretrainedConfig,
    Qwen2Config,
    Qwen3Config,
)

VOCAB_SIZE = 128
PAD_TOKEN_ID = 0
EOS_TOKEN_ID = 1

_COMMON = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "pad_token_id": PAD_TOKEN_ID,
    "eos_token_id": EOS_TOKEN_ID,
    "bos_token_id": 2,
    "tie_word_embeddings": False,
}


def _config(arch: str) -> PretrainedConfig:
    if arch == "llama":
        return LlamaConfig(**_COMMON)
    if arch == "qwen2":
        return Qwen2Config(**_COMMON)
    if arch == "qwen3":
        return Qwen3Config(**_COMMON, head_dim=16)
    if arch == "mistral":
        return MistralConfig(**_COMMON, sliding_window=None)
    if arch == "gemma":
        return GemmaConfig(**_COMMON, head_dim=16)
    if arch == "phi3":
        return Phi3Config(**{**_COMMON, "num_key_value_heads": 4})
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=VOCAB_SIZE,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=512,
            pad_token_id=PAD_TOKEN_ID,
            eos_token_id=EOS_TOKEN_ID,
            bos_token_id=2,
            tie_word_embeddings=False,
        )
    raise ValueError(f"unknown tiny architecture {arch!r}; known: {ARCHITECTURES}")


ARCHITECTURES: tuple[str, ...] = ("llama", "qwen2", "qwen3", "mistral", "gpt2", "gemma", "phi3")


def build_tiny_model(arch: str, *, seed: int = 0, init_std: float = 0.35, attn_implementation: str = "sdpa"):
    """A tiny random causal LM of ``arch`` in fp32 eval mode, deterministic for ``seed``."""
    config = _config(arch)
    config.initializer_range = init_std
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
    model.generation_config.pad_token_id = PAD_TOKEN_ID
    model.generation_config.eos_token_id = EOS_TOKEN_ID
    return model.eval()


def random_prompts(batch_size: int, length: int, *, seed: int = 0) -> torch.Tensor:
    """Prompt token ids that avoid the special ids (pad, eos, bos)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB_SIZE, (batch_size, length), generator=generator)


def left_padded_batch(lengths: list[int], pad_token_id: int = PAD_TOKEN_ID, seed: int = 0):
    """``(input_ids, attention_mask, prompts)`` for random prompts of the given lengths, left padded."""
    prompts = [random_prompts(1, length, seed=seed + index)[0] for index, length in enumerate(lengths)]
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = prompt
        attention_mask[row, width - len(prompt) :] = 1
    return input_ids, attention_mask, prompts
