"""Jacobi and jacobi_mr give exactly the tokens of greedy ``generate`` (fp32), for every architecture and setting."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jacobi_forcing_hf import enable_jacobi
from tiny_models import ARCHITECTURES, build_tiny_model, left_padded_batch, random_prompts

SETTINGS = {
    "jacobi-n4": {"decoding": "jacobi", "block_size": 4},
    "jacobi-n16": {"decoding": "jacobi", "block_size": 16},
    "mr-defaults": {"decoding": "jacobi_mr"},
    "mr-K3-pool2-r0.5": {
        "decoding": "jacobi_mr",
        "block_size": 4,
        "num_blocks": 3,
        "pool_size": 2,
        "activation_ratio": 0.5,
    },
    "mr-K2-pool8-r1": {
        "decoding": "jacobi_mr",
        "block_size": 8,
        "num_blocks": 2,
        "pool_size": 8,
        "activation_ratio": 1.0,
    },
    "mr-draft-alternatives3": {"decoding": "jacobi_mr", "block_size": 5, "pool_size": 2, "draft_alternatives": 3},
    "mr-copy-length12": {
        "decoding": "jacobi_mr",
        "block_size": 3,
        "pool_size": 4,
        "copy_length": 12,
        "draft_alternatives": 2,
    },
    "jacobi-repeat-last-init": {"decoding": "jacobi", "block_size": 5, "draft_init": "repeat_last"},
    "mr-repeat-last-init": {"decoding": "jacobi_mr", "block_size": 6, "draft_init": "repeat_last"},
    "mr-random-init-no-prefill-draft": {
        "decoding": "jacobi_mr",
        "block_size": 6,
        "draft_init": "random_context",
        "prefill_draft": False,
    },
}


@pytest.mark.parametrize("setting", SETTINGS.values(), ids=SETTINGS.keys())
def test_equals_greedy_for_every_architecture(tiny_model, setting, greedy):
    model = enable_jacobi(tiny_model)
    prompt = random_prompts(1, 10, seed=3)
    expected = greedy(model, prompt, max_new_tokens=40)
    with torch.inference_mode():
        output = model.generate(prompt, do_sample=False, max_new_tokens=40, **setting)
    assert torch.equal(output, expected)
    stats = model.jacobi_stats
    assert stats.new_tokens == [expected.shape[1] - prompt.shape[1]]
    assert stats.forwards == stats.row_forwards[0] == len(stats.committed_per_forward[0])
    assert sum(stats.committed_per_forward[0]) == stats.new_tokens[0]


@pytest.mark.parametrize("arch", ["llama", "gpt2", "gemma", "qwen3"])
@pytest.mark.parametrize("setting", [SETTINGS["jacobi-n4"], SETTINGS["mr-K3-pool2-r0.5"]], ids=["jacobi", "mr"])
def test_padded_batch_rows_equal_their_own_greedy_output(arch, setting, greedy):
    model = enable_jacobi(build_tiny_model(arch))
    input_ids, attention_mask, prompts = left_padded_batch([4, 11, 7, 9])
    with torch.inference_mode():
        output = model.generate(input_ids, attention_mask=attention_mask, do_sample=False, max_new_tokens=30, **setting)
    width = input_ids.shape[1]
    for row, prompt in enumerate(prompts):
        expected = greedy(model, prompt[None], max_new_tokens=30)[0, len(prompt) :].tolist()
        generated = output[row, width:].tolist()
        assert generated[: len(expected)] == expected, f"row {row}"
        assert all(token == model.generation_config.pad_token_id for token in generated[len(expected) :])
        assert model.jacobi_stats.new_tokens[row] == len(expected)


def test_padded_batch_equals_transformers_batched_greedy(llama_tiny, greedy):
    model = enable_jacobi(llama_tiny)
    input_ids, attention_mask, _ = left_padded_batch([3, 12, 8])
    expected = greedy(model, input_ids, attention_mask=attention_mask, max_new_tokens=25)
    with torch.inference_mode():
        output = model.generate(
            input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=25,
            decoding="jacobi_mr",
            block_size=5,
        )
    assert torch.equal(output, expected)


def test_finished_rows_stop_costing_forwards(greedy):
    model = enable_jacobi(build_tiny_model("gpt2"))
    input_ids, attention_mask, prompts = left_padded_batch([5, 9, 12], seed=0)
    with torch.inference_mode():
        model.generate(
            input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=30,
            decoding="jacobi",
            block_size=4,
        )
    stats = model.jacobi_stats
    lengths = [len(greedy(model, p[None], max_new_tokens=30)[0]) - len(p) for p in prompts]
    assert min(lengths) < 30, "the fixture must contain a row that stops early at eos"
    assert stats.forwards == max(stats.row_forwards)
    for row, length in enumerate(lengths):
        assert stats.row_forwards[row] <= length
        if length < 30:
            assert stats.row_forwards[row] < stats.forwards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arch=st.sampled_from(ARCHITECTURES),
    prompt_length=st.integers(1, 20),
    seed=st.integers(0, 10_000),
    block_size=st.integers(1, 12),
    num_blocks=st.integers(1, 4),
    pool_size=st.integers(0, 6),
    draft_alternatives=st.integers(0, 3),
    copy_length=st.one_of(st.none(), st.integers(1, 16)),
    activation_ratio=st.floats(0.05, 1.0),
    max_new_tokens=st.integers(1, 40),
    decoding=st.sampled_from(["jacobi", "jacobi_mr"]),
)
def test_property_any_prompt_and_knobs_equal_greedy(
    arch,
    prompt_length,
    seed,
    block_size,
    num_blocks,
    pool_size,
    draft_alternatives,
    copy_length,
    activation_ratio,
    max_new_tokens,
    decoding,
):
    model = _cached_model(arch)
    prompt = random_prompts(1, prompt_length, seed=seed)
    with torch.inference_mode():
        expected = model.generate(prompt, do_sample=False, max_new_tokens=max_new_tokens, decoding=None)
        output = model.generate(
            prompt,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            decoding=decoding,
            block_size=block_size,
            num_blocks=num_blocks,
            pool_size=pool_size,
            draft_alternatives=draft_alternatives,
            copy_length=copy_length,
            activation_ratio=activation_ratio,
            draft_seed=seed,
        )
    assert torch.equal(output, expected)


_MODELS: dict[str, torch.nn.Module] = {}


def _cached_model(arch: str):
    if arch not in _MODELS:
        _MODELS[arch] = enable_jacobi(build_tiny_model(arch, seed=1))
    return _MODELS[arch]
