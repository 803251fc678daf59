"""Forward counting and the per-method measurement, on tiny random models."""

from __future__ import annotations

import pytest
import torch

import jacobi_forcing_hf
from jacobi_forcing_hf.evaluation.errors import EvaluationInputError
from jacobi_forcing_hf.evaluation.speed import (
    ForwardCounter,
    JacobiKnobs,
    MethodSettings,
    check_methods,
    generate_measured,
    prepare_model,
)
from tiny_models import build_tiny_model, random_prompts


def _inputs(length: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    input_ids = random_prompts(1, length, seed=seed)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def test_greedy_tpf_is_exactly_one_on_every_architecture(tiny_model):
    generation = generate_measured(tiny_model, _inputs(), "greedy", MethodSettings(max_new_tokens=12))
    assert generation.forwards == generation.new_tokens > 0
    assert generation.new_tokens / generation.forwards == 1.0


def test_forward_counter_counts_only_inside_the_block(llama_tiny):
    with ForwardCounter(llama_tiny) as counter:
        llama_tiny(**_inputs())
        llama_tiny(**_inputs())
    llama_tiny(**_inputs())
    assert counter.count == 2


def test_new_tokens_stop_at_the_first_eos(llama_tiny):
    free = generate_measured(llama_tiny, _inputs(), "greedy", MethodSettings(max_new_tokens=12))
    assert not free.stopped_at_eos
    stop_token = free.token_ids[4]
    first_position = free.token_ids.index(stop_token)
    model = build_tiny_model("llama")
    model.generation_config.eos_token_id = stop_token
    stopped = generate_measured(model, _inputs(), "greedy", MethodSettings(max_new_tokens=12))
    assert stopped.stopped_at_eos
    assert stopped.token_ids == free.token_ids[: first_position + 1]  # EOS included, nothing after
    assert stopped.forwards == first_position + 1


def test_prompt_lookup_is_counted_per_verification_forward(llama_tiny):
    # with this seed the tiny model's 64-token continuation repeats n-grams, which prompt lookup exploits
    settings = MethodSettings(max_new_tokens=64)
    lookup = generate_measured(llama_tiny, _inputs(seed=0), "prompt_lookup", settings)
    greedy = generate_measured(llama_tiny, _inputs(seed=0), "greedy", settings)
    assert lookup.token_ids == greedy.token_ids  # lossless
    assert lookup.forwards < lookup.new_tokens == greedy.forwards


def test_assisted_decoding_counts_only_the_target_model(llama_tiny):
    draft = build_tiny_model("llama", seed=1)
    settings = MethodSettings(max_new_tokens=16, draft_model=draft)
    with ForwardCounter(draft) as draft_counter:
        assisted = generate_measured(llama_tiny, _inputs(), "assisted", settings)
    greedy = generate_measured(llama_tiny, _inputs(), "greedy", settings)
    assert draft_counter.count > 0
    assert assisted.token_ids == greedy.token_ids
    # every target forward yields at least one token, so the target's count can never exceed the tokens
    assert 0 < assisted.forwards <= assisted.new_tokens


def test_repeats_do_not_change_tokens_or_counts(llama_tiny):
    settings = MethodSettings(max_new_tokens=8)
    first, second = (generate_measured(llama_tiny, _inputs(), "greedy", settings) for _ in range(2))
    assert (first.token_ids, first.forwards) == (second.token_ids, second.forwards)
    assert first.seconds > 0


def test_method_names_are_checked():
    with pytest.raises(EvaluationInputError, match=r"unknown decoding method 'beam'.*greedy, jacobi"):
        check_methods(["greedy", "beam"])
    with pytest.raises(EvaluationInputError, match="draft model"):
        check_methods(["assisted"])
    assert check_methods(["greedy", "prompt_lookup", "greedy"]) == ["greedy", "prompt_lookup"]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        (JacobiKnobs(block_size=0), "block_size must be an integer >= 1"),
        (JacobiKnobs(num_blocks=0), "num_blocks must be an integer >= 1"),
        (JacobiKnobs(pool_size=-1), "pool_size must be an integer >= 0"),
        (JacobiKnobs(activation_ratio=0.0), r"activation_ratio must be a number with 0 < r <= 1"),
        (JacobiKnobs(activation_ratio=1.2), r"activation_ratio must be a number with 0 < r <= 1"),
        (JacobiKnobs(block_size=2.5), "block_size must be an integer"),
        (JacobiKnobs(draft_alternatives=-1), "draft_alternatives must be an integer >= 0"),
        (JacobiKnobs(copy_length=0), "copy_length must be an integer >= 1"),
    ],
)
def test_knob_ranges(knobs, message):
    with pytest.raises(EvaluationInputError, match=message):
        knobs.validate()


def test_knobs_resolve_from_the_call_then_the_generation_config_then_the_defaults(llama_tiny):
    config = llama_tiny.generation_config
    config.block_size = 32
    try:
        resolved = JacobiKnobs(pool_size=2).resolved(config)
        config.copy_length = 24
        assert JacobiKnobs().resolved(config).copy_length == 24
    finally:
        del config.block_size, config.copy_length
    expected = JacobiKnobs(block_size=32, num_blocks=2, pool_size=2, activation_ratio=0.85, draft_alternatives=0)
    assert resolved == expected
    # late knobs at their default are left out of stored configs: older results files still resume
    assert set(resolved.as_dict()) == {"block_size", "num_blocks", "pool_size", "activation_ratio"}
    stored = JacobiKnobs(draft_alternatives=3, copy_length=16).as_dict()
    assert (stored["draft_alternatives"], stored["copy_length"]) == (3, 16)


@pytest.mark.skipif(not hasattr(jacobi_forcing_hf, "enable_jacobi"), reason="needs the Jacobi engine")
def test_plain_methods_ignore_a_decoding_saved_in_the_generation_config():
    model = build_tiny_model("llama")
    model.generation_config.decoding = "jacobi_mr"  # as saved with a Jacobi-trained checkpoint
    model.generation_config.block_size = 8
    prepare_model(model, ["jacobi_mr"])
    model.jacobi_stats = None
    settings = MethodSettings(max_new_tokens=16, knobs=JacobiKnobs().resolved(model.generation_config))
    greedy = generate_measured(model, _inputs(), "greedy", settings)
    assert model.jacobi_stats is None and greedy.forwards == greedy.new_tokens
    jacobi = generate_measured(model, _inputs(), "jacobi_mr", settings)
    assert jacobi.engine_forwards == jacobi.forwards and jacobi.token_ids == greedy.token_ids
    assert settings.knobs.block_size == 8  # the checkpoint's knob is used when the call sets none
