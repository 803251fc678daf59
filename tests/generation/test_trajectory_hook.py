"""The trajectory recorder sees every block from its initial draft to its fixed point."""

from __future__ import annotations

import pytest
import torch

from jacobi_forcing_hf import TrajectoryRecorder, enable_jacobi
from tiny_models import build_tiny_model, left_padded_batch

BLOCK = 4


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_fixed_points_concatenate_to_greedy_and_states_start_at_the_initial_draft(arch):
    model = enable_jacobi(build_tiny_model(arch, seed=3))
    input_ids, attention_mask, prompts = left_padded_batch([6, 10, 3], seed=7)
    recorder = TrajectoryRecorder()
    with torch.inference_mode():
        model.generate(
            input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=6 * BLOCK,
            decoding="jacobi",
            block_size=BLOCK,
            draft_init="random_context",
            prefill_draft=False,
            finish_block_on_stop=True,
            trajectory_recorder=recorder,
        )
    for row, prompt in enumerate(prompts):
        with torch.inference_mode():
            greedy = model.generate(prompt[None], do_sample=False, max_new_tokens=6 * BLOCK, eos_token_id=None)
        blocks = recorder.rows[row]
        assert [block.block_index for block in blocks] == list(range(len(blocks)))
        fixed_points = [token for block in blocks for token in block.fixed_point]
        assert fixed_points == greedy[0, len(prompt) :].tolist()[: len(fixed_points)]
        for block in blocks:
            assert block.prefix_length == len(prompt) + block.block_index * BLOCK
            assert all(len(state) == BLOCK for state in block.states)
            # the initial draft: its first token is exact or the previous forward's guess; the rest is drawn
            # from the text so far (draft_init="random_context")
            context = set(prompt.tolist()) | set(fixed_points[: block.block_index * BLOCK + 1])
            assert set(block.states[0][1:]) <= context
            # Jacobi never loses converged tokens: the prefix that matches the fixed point only grows
            converged = [_matching_prefix(state, block.fixed_point) for state in block.states]
            assert converged == sorted(converged) and converged[-1] == BLOCK


def test_rows_stopped_by_eos_still_finish_their_block():
    model = enable_jacobi(build_tiny_model("gpt2", seed=0))
    input_ids, attention_mask, _ = left_padded_batch([5, 9, 12], seed=0)
    recorder = TrajectoryRecorder()
    with torch.inference_mode():
        output = model.generate(
            input_ids,
            attention_mask=attention_mask,
            do_sample=False,
            max_new_tokens=30,
            decoding="jacobi",
            block_size=BLOCK,
            finish_block_on_stop=True,
            trajectory_recorder=recorder,
            prefill_draft=False,
        )
    stopped = [row for row in range(3) if model.jacobi_stats.new_tokens[row] < 30]
    assert stopped, "the fixture must contain a row that stops at eos"
    for row in stopped:
        generated = model.jacobi_stats.new_tokens[row]
        assert output[row, input_ids.shape[1] + generated - 1] == model.generation_config.eos_token_id
        assert len(recorder.rows[row]) == -(-generated // BLOCK)  # every block up to the stop is complete


def _matching_prefix(state: list[int], fixed_point: list[int]) -> int:
    length = 0
    while length < len(state) and state[length] == fixed_point[length]:
        length += 1
    return length
