"""Everything greedy ``generate`` offers keeps working under Jacobi decoding: processors, stopping, streamers."""

from __future__ import annotations

import pytest
import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from jacobi_forcing_hf import enable_jacobi
from tiny_models import EOS_TOKEN_ID, build_tiny_model, random_prompts

PROCESSOR_SETTINGS = {
    "repetition_penalty": {"repetition_penalty": 1.8},
    "no_repeat_ngram_size": {"no_repeat_ngram_size": 2},
    "min_new_tokens": {"min_new_tokens": 25, "eos_token_id": [EOS_TOKEN_ID, 5, 9]},
    "bad_words_ids": {"bad_words_ids": [[7], [20, 21]]},
    "suppress_tokens": {"suppress_tokens": [3, 4, 5, 6]},
    "begin_suppress_tokens": {"begin_suppress_tokens": [10, 11]},
    "combined": {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3, "min_new_tokens": 5},
}
JACOBI_SETTINGS = {
    "jacobi": {"decoding": "jacobi", "block_size": 5},
    "jacobi_mr": {"decoding": "jacobi_mr", "block_size": 6, "pool_size": 3, "num_blocks": 3, "activation_ratio": 0.5},
}


@pytest.fixture(scope="module")
def model():
    return enable_jacobi(build_tiny_model("qwen2", seed=2))


def _both(model, prompt, jacobi, **kwargs):
    with torch.inference_mode():
        expected = model.generate(prompt, do_sample=False, **kwargs)
        output = model.generate(prompt, do_sample=False, **jacobi, **kwargs)
    return expected, output


@pytest.mark.parametrize("jacobi", JACOBI_SETTINGS.values(), ids=JACOBI_SETTINGS.keys())
@pytest.mark.parametrize("processors", PROCESSOR_SETTINGS.values(), ids=PROCESSOR_SETTINGS.keys())
def test_logits_processors_apply_per_position(model, processors, jacobi):
    expected, output = _both(model, random_prompts(1, 9, seed=5), jacobi, max_new_tokens=40, **processors)
    assert torch.equal(output, expected)


def test_processors_change_the_output_so_the_test_above_can_fail(model):
    prompt = random_prompts(1, 9, seed=5)
    with torch.inference_mode():
        plain = model.generate(prompt, do_sample=False, max_new_tokens=40)
        penalised = model.generate(prompt, do_sample=False, max_new_tokens=40, repetition_penalty=1.8)
    assert not torch.equal(plain, penalised)


@pytest.mark.parametrize("jacobi", JACOBI_SETTINGS.values(), ids=JACOBI_SETTINGS.keys())
def test_several_eos_ids_stop_at_the_first_one(model, jacobi):
    prompt = random_prompts(1, 9, seed=1)
    with torch.inference_mode():
        free_run = model.generate(prompt, do_sample=False, max_new_tokens=40, eos_token_id=None)[0, 9:].tolist()
    eos_ids = [free_run[12], free_run[20]]
    expected, output = _both(model, prompt, jacobi, max_new_tokens=40, eos_token_id=eos_ids)
    assert torch.equal(output, expected)
    assert output.shape[1] <= 9 + 13


@pytest.mark.parametrize("jacobi", JACOBI_SETTINGS.values(), ids=JACOBI_SETTINGS.keys())
@pytest.mark.parametrize("length", [{"max_length": 23}, {"max_new_tokens": 1}, {"max_new_tokens": 17}])
def test_length_limits(model, jacobi, length):
    expected, output = _both(model, random_prompts(1, 9, seed=2), jacobi, eos_token_id=None, **length)
    assert torch.equal(output, expected)


class StopAfterToken(StoppingCriteria):
    """A user criterion: stop a row once it has produced ``token`` twice after the prompt."""

    def __init__(self, token: int, prompt_length: int) -> None:
        self.token, self.prompt_length = token, prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        return (input_ids[:, self.prompt_length :] == self.token).sum(-1) >= 2


@pytest.mark.parametrize("jacobi", JACOBI_SETTINGS.values(), ids=JACOBI_SETTINGS.keys())
def test_user_stopping_criteria(model, jacobi):
    prompt = random_prompts(1, 9, seed=4)
    with torch.inference_mode():
        free_run = model.generate(prompt, do_sample=False, max_new_tokens=40, eos_token_id=None)[0, 9:].tolist()
    token = next(t for t in free_run if free_run.count(t) >= 2)
    criteria = StoppingCriteriaList([StopAfterToken(token, 9)])
    expected, output = _both(model, prompt, jacobi, max_new_tokens=40, stopping_criteria=criteria, eos_token_id=None)
    assert torch.equal(output, expected)
    assert output.shape[1] < 9 + 40


class RecordingStreamer(BaseStreamer):
    def __init__(self) -> None:
        self.puts: list[list[int]] = []
        self.ended = False

    def put(self, value):
        self.puts.append(value.flatten().tolist())

    def end(self):
        self.ended = True


@pytest.mark.parametrize("jacobi", JACOBI_SETTINGS.values(), ids=JACOBI_SETTINGS.keys())
def test_streamer_receives_the_prompt_then_the_same_tokens(model, jacobi):
    prompt = random_prompts(1, 9, seed=6)
    greedy_streamer, jacobi_streamer = RecordingStreamer(), RecordingStreamer()
    with torch.inference_mode():
        model.generate(prompt, do_sample=False, max_new_tokens=30, streamer=greedy_streamer)
        model.generate(prompt, do_sample=False, max_new_tokens=30, streamer=jacobi_streamer, **jacobi)
    assert jacobi_streamer.puts[0] == prompt[0].tolist() == greedy_streamer.puts[0]
    assert _flatten(jacobi_streamer.puts[1:]) == _flatten(greedy_streamer.puts[1:])
    assert jacobi_streamer.ended
    assert len(jacobi_streamer.puts) - 1 == model.jacobi_stats.forwards


def _flatten(puts: list[list[int]]) -> list[int]:
    return [token for put in puts for token in put]


def test_stats_count_every_model_forward(model):
    calls = []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        with torch.inference_mode():
            model.generate(random_prompts(1, 9), do_sample=False, max_new_tokens=30, decoding="jacobi_mr")
    finally:
        handle.remove()
    assert model.jacobi_stats.forwards == len(calls)


def test_return_dict_carries_stats_and_sequences(model):
    prompt = random_prompts(1, 9)
    with torch.inference_mode():
        output = model.generate(
            prompt, do_sample=False, max_new_tokens=12, decoding="jacobi", return_dict_in_generate=True
        )
        expected = model.generate(prompt, do_sample=False, max_new_tokens=12)
    assert torch.equal(output.sequences, expected)
    assert output.jacobi_stats is model.jacobi_stats
    assert output.jacobi_stats.new_tokens == [expected.shape[1] - 9]
