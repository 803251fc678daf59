"""The append-only results file: resume, refusal of other arguments, recovery from a line cut by a kill."""

from __future__ import annotations

import json

import pytest

from jacobi_forcing_hf.evaluation.errors import EvaluationInputError
from jacobi_forcing_hf.evaluation.results_store import ResultsStore

CONFIG = {"model": "tiny", "methods": ("greedy", "jacobi"), "max_new_tokens": 8}


def test_records_survive_a_restart(tmp_path):
    path = tmp_path / "runs" / "bench.jsonl"
    store = ResultsStore(path, CONFIG)
    store.append("a", {"tpf": 1.0})
    store.append("b", {"tpf": 2.0})
    reopened = ResultsStore(path, dict(CONFIG, methods=["greedy", "jacobi"]))  # a list equals the tuple
    assert reopened.done_keys() == {"a", "b"}
    assert reopened.get("b") == {"tpf": 2.0}
    assert list(reopened.records()) == ["a", "b"]


def test_other_arguments_are_refused_naming_the_difference(tmp_path):
    path = tmp_path / "bench.jsonl"
    ResultsStore(path, CONFIG).append("a", {"tpf": 1.0})
    with pytest.raises(EvaluationInputError, match=r"max_new_tokens: file has 8, this run has 16.*--fresh"):
        ResultsStore(path, dict(CONFIG, max_new_tokens=16))


def test_fresh_discards_the_old_file(tmp_path):
    path = tmp_path / "bench.jsonl"
    ResultsStore(path, CONFIG).append("a", {"tpf": 1.0})
    assert ResultsStore(path, dict(CONFIG, max_new_tokens=16), fresh=True).done_keys() == set()
    assert ResultsStore(path, dict(CONFIG, max_new_tokens=16)).done_keys() == set()


def test_a_line_cut_by_a_kill_is_dropped_and_appending_continues(tmp_path):
    path = tmp_path / "bench.jsonl"
    ResultsStore(path, CONFIG).append("a", {"tpf": 1.0})
    with open(path, "a") as handle:
        handle.write('{"key": "b", "record": {"tp')  # killed mid-write
    store = ResultsStore(path, CONFIG)
    assert store.done_keys() == {"a"}
    store.append("b", {"tpf": 2.0})
    lines = path.read_text().splitlines()
    assert [json.loads(line).get("key") for line in lines] == [None, "a", "b"]


def test_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_text('{"something": "else"}\n')
    with pytest.raises(EvaluationInputError, match="not a results file"):
        ResultsStore(path, CONFIG)


def test_a_key_is_stored_once(tmp_path):
    store = ResultsStore(None, CONFIG)
    store.append("a", {"tpf": 1.0})
    with pytest.raises(ValueError, match="already stored"):
        store.append("a", {"tpf": 1.0})
