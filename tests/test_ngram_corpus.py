"""The corpus of an n-gram table: resumable greedy outputs, trajectory fixed points, and the ``ngram-table`` command."""

from __future__ import annotations

import json
from unittest import mock

import datasets
import pytest
import torch

from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.generation.ngram_table import NgramTable
from jacobi_forcing_hf.ngram_corpus import OUTPUTS_NAME, cut_after_eos, generate_greedy_outputs, trajectory_outputs

PROMPTS = ["def add(a, b):", "hello", "x = [1, 2]", "class A:", "import os", "for i in range(3):", "while x:"]


@pytest.fixture(scope="module")
def prompts():
    return datasets.Dataset.from_dict({"prompt": PROMPTS})


def _generate(model, tokenizer, prompts, directory, **kwargs):
    arguments = {"max_new_tokens": 12, "batch_size": 2, "progress": False}
    return generate_greedy_outputs(model, tokenizer, prompts, output_dir=directory, **{**arguments, **kwargs})


def test_a_resumed_corpus_equals_an_uninterrupted_one(llama_tiny, char_tokenizer, prompts, tmp_path):
    model, tokenizer = llama_tiny, char_tokenizer
    whole = _generate(model, tokenizer, prompts, tmp_path / "whole")
    assert len(whole) == len(PROMPTS)

    interrupted = tmp_path / "interrupted"
    _generate(model, tokenizer, prompts, interrupted, num_prompts=4)
    outputs_file = interrupted / OUTPUTS_NAME
    text = outputs_file.read_text()
    outputs_file.write_text(text[: len(text) - 5])  # the last line torn: its whole batch is made again
    with mock.patch.object(model, "generate", wraps=model.generate) as generate:
        resumed = _generate(model, tokenizer, prompts, interrupted)
    assert resumed == whole
    assert generate.call_count == 3  # prompts 2-3 (the torn batch), 4-5 and 6; prompts 0-1 were kept
    assert [json.loads(line) for line in outputs_file.read_text().splitlines()] == whole


def test_a_folder_of_other_settings_is_refused_before_decoding(llama_tiny, char_tokenizer, prompts, tmp_path):
    model, tokenizer = llama_tiny, char_tokenizer
    _generate(model, tokenizer, prompts, tmp_path, num_prompts=2)
    with mock.patch.object(model, "generate", wraps=model.generate) as generate:
        with pytest.raises(ValueError, match="max_new_tokens"):
            _generate(model, tokenizer, prompts, tmp_path, max_new_tokens=5)
        with pytest.raises(ValueError, match="only 7 prompts"):
            _generate(model, tokenizer, prompts, tmp_path, num_prompts=8)
    assert generate.call_count == 0


def test_trajectory_outputs_join_blocks_in_order_and_cut_after_eos():
    rows = [
        {"prompt_id": 1, "block_index": 1, "output_ids": [7, 0, 5]},
        {"prompt_id": 0, "block_index": 0, "output_ids": [1, 2, 3]},
        {"prompt_id": 1, "block_index": 0, "output_ids": [4, 5, 6]},
    ]
    assert trajectory_outputs(rows, eos_token_id=0) == [[1, 2, 3], [4, 5, 6, 7, 0]]
    assert cut_after_eos([3, 4], eos_token_id=0) == [3, 4]


def test_the_command_builds_a_table_from_the_embedded_models_outputs(tmp_path, embedded_model, capsys):
    output = tmp_path / "table.json"
    arguments = ["ngram-table", "--output", str(output), "--num-prompts", "4", "--max-new-tokens", "24"]
    assert main([*arguments, "--batch-size", "2", "--min-count", "1", "--continuation-length", "4"]) == 0
    assert "keys from 4 outputs" in capsys.readouterr().out
    table = NgramTable.load(output)
    corpus = [json.loads(line) for line in (tmp_path / "table-corpus" / OUTPUTS_NAME).read_text().splitlines()]
    assert table.continuations(corpus[0][:3], length=4)[0] == (3, corpus[0][3:7])

    model, tokenizer = embedded_model
    prompt = tokenizer("def fibonacci(n):", return_tensors="pt")
    with torch.inference_mode():
        expected = model.generate(**prompt, max_new_tokens=24, do_sample=False)
        output_ids = model.generate(
            **prompt, max_new_tokens=24, decoding="jacobi_mr", block_size=4, ngram_table=str(output)
        )
    assert torch.equal(output_ids, expected)


def test_the_command_refuses_bad_settings_before_loading_anything(tmp_path, capsys):
    assert main(["ngram-table", "--output", str(tmp_path / "t.json"), "--max-ngram-size", "0"]) == 2
    assert "max_ngram_size must be" in capsys.readouterr().err
    assert main(["ngram-table", "--output", str(tmp_path / "t.json"), "--trajectories", str(tmp_path)]) == 2
    assert "holds no trajectories" in capsys.readouterr().err
