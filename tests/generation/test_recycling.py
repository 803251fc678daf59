"""Candidates found in the text: a one-token key match proposes a block's worth, a copy in progress runs longer."""

from __future__ import annotations

from jacobi_forcing_hf.generation.recycling import ContextIndex, select_candidates

TEXT = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 9, 20, 21]


def _index(tokens: list[int]) -> ContextIndex:
    index = ContextIndex(max_ngram_size=3)
    index.extend(tokens)
    return index


def test_a_copy_in_progress_gets_copy_length_tokens_and_a_single_token_match_the_candidate_length():
    index = _index(TEXT)
    found = index.continuations([2, 3], length=2, copy_length=6)
    assert found[0] == (2, [4, 5, 6, 7, 8, 9])  # "2 3" matched: a copy, up to copy_length
    assert (1, [4, 5]) in found  # "3" alone matched: a block-length guess


def test_without_copy_length_every_match_gets_the_candidate_length():
    index = _index(TEXT)
    assert index.continuations([2, 3], length=2) == [(2, [4, 5]), (1, [4, 5])]


def test_the_most_recent_occurrence_ranks_first_within_a_match_length():
    index = _index(TEXT)
    assert index.continuations([9], length=2, copy_length=8)[:2] == [(1, [20, 21]), (1, [10, 11])]
    chosen = select_candidates(index.continuations([8, 9], length=2, copy_length=8), draft=[20], limit=2)
    assert chosen == [[10, 11, 12, 9, 20, 21], [20, 21]]
