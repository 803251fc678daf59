"""The corpus n-gram table: what it keeps, how it is stored, and that decoding with it stays greedy and gets faster."""

from __future__ import annotations

import json
import os

import pytest
import torch

from jacobi_forcing_hf import enable_jacobi
from jacobi_forcing_hf.generation.config import JacobiConfig
from jacobi_forcing_hf.generation.ngram_table import NgramTable, load_ngram_table
from tiny_models import ARCHITECTURES, build_tiny_model, random_prompts

CORPUS = [[1, 2, 3, 4], [1, 2, 3, 5], [7, 1, 2, 3, 4]]


def test_keeps_frequent_continuations_longest_key_first():
    table = NgramTable.from_sequences(CORPUS, max_ngram_size=2, continuation_length=2, min_count=2)
    assert table.continuations([9, 1, 2], length=2) == [(2, [3, 4]), (1, [3, 4])]  # "3 5" was seen once
    assert table.continuations([1], length=2) == [(1, [2, 3])]
    assert table.continuations([1], length=1) == [(1, [2])]
    assert table.continuations([8], length=2) == []


def test_ranks_continuations_by_count_and_caps_them_per_key():
    table = NgramTable.from_sequences(
        CORPUS, max_ngram_size=1, continuation_length=1, continuations_per_key=1, min_count=1
    )
    assert table.continuations([3], length=1) == [(1, [4])]  # "4" twice beats "5" once
    wider = NgramTable.from_sequences(CORPUS, max_ngram_size=1, continuation_length=1, min_count=1)
    assert wider.continuations([3], length=1) == [(1, [4]), (1, [5])]


def test_save_and_load_round_trip(tmp_path):
    table = NgramTable.from_sequences(CORPUS, max_ngram_size=3, continuation_length=3, min_count=1)
    loaded = NgramTable.load(table.save(tmp_path / "table.json"))
    assert loaded.entries == table.entries
    assert (loaded.max_ngram_size, loaded.continuation_length) == (3, 3)


def test_a_table_named_by_path_is_read_once_and_again_after_it_changes(tmp_path):
    path = tmp_path / "table.json"
    NgramTable.from_sequences(CORPUS, min_count=1).save(path)
    first = load_ngram_table(str(path))
    assert load_ngram_table(str(path)) is first
    NgramTable.from_sequences([[5, 6, 7, 8, 9, 10]], min_count=1).save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))  # a new modification time
    assert load_ngram_table(str(path)).continuations([5], length=1) == [(1, [6])]


def test_bad_files_and_arguments_are_refused_before_decoding(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a jacobi-forcing-ngram-table"):
        NgramTable.load(other)
    with pytest.raises(ValueError, match="ngram_table: no n-gram table"):
        JacobiConfig(ngram_table=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="ngram_table must be"):
        JacobiConfig(ngram_table=[[1, 2]])
    with pytest.raises(ValueError, match="min_count"):
        NgramTable.from_sequences(CORPUS, min_count=0)


def test_plain_jacobi_uses_no_table():
    table = NgramTable.from_sequences(CORPUS, min_count=1)
    assert JacobiConfig(decoding="jacobi", ngram_table=table).effective_ngram_table is None
    assert JacobiConfig(decoding="jacobi_mr", ngram_table=table).effective_ngram_table is table


def _model(arch: str = "llama"):
    return enable_jacobi(build_tiny_model(arch, seed=1))


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_table_of_unrelated_text_leaves_the_output_greedy(arch, greedy):
    model = _model(arch)
    noise = random_prompts(6, 40, seed=3).tolist()
    table = NgramTable.from_sequences(noise, continuation_length=6, min_count=1)
    prompts = random_prompts(2, 9, seed=4)
    for prompt in prompts:
        expected = greedy(model, prompt[None], max_new_tokens=30)
        with torch.inference_mode():
            output = model.generate(
                prompt[None], max_new_tokens=30, decoding="jacobi_mr", block_size=4, ngram_table=table
            )
        assert torch.equal(output, expected)


def test_a_table_of_the_models_own_outputs_saves_forwards_and_stays_greedy(tmp_path, greedy):
    model = _model()
    prompts = random_prompts(3, 8, seed=5)
    outputs = [greedy(model, prompt[None], max_new_tokens=40)[0, 8:].tolist() for prompt in prompts]
    path = NgramTable.from_sequences(outputs, continuation_length=4, min_count=1).save(tmp_path / "own.json")
    knobs = {"max_new_tokens": 40, "decoding": "jacobi_mr", "block_size": 4, "pool_size": 4}
    model.generation_config.ngram_table = str(path)  # a path in the generation config is read once
    try:
        for prompt, expected in zip(prompts, outputs):
            with torch.inference_mode():
                plain = model.generate(prompt[None], **knobs, ngram_table="none")  # "none" turns the table off
                plain_forwards = model.jacobi_stats.forwards
                with_table = model.generate(prompt[None], **knobs)
                table_forwards = model.jacobi_stats.forwards
            assert with_table[0, 8:].tolist() == plain[0, 8:].tolist() == expected
            assert table_forwards < plain_forwards
    finally:
        model.generation_config.ngram_table = None
