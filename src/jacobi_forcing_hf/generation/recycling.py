"""Rejection recycling: n-grams of the prompt, the text so far and earlier rejected drafts become candidates.

A candidate is a continuation proposed for the positions right after the last committed token. It is found by
matching the last committed tokens (up to ``max_ngram_size`` of them) against earlier text: the prompt and the
generated text (as transformers' prompt lookup does) and the pool of drafts that earlier forwards rejected (the
reference's rejection recycling). Longer key matches rank first, then more recent ones.

A key match of ``COPY_MIN_MATCH`` tokens or more in the text marks a copy in progress (a docstring's example, a
repeated identifier sequence): such a continuation may run ``copy_length`` tokens, beyond one block.
"""

from __future__ import annotations

from collections import deque

COPY_MIN_MATCH = 2


class ContextIndex:
    """Incremental index of a growing token sequence: n-gram (1..max_n tokens) -> positions where it ends."""

    def __init__(self, max_ngram_size: int) -> None:
        self.max_ngram_size = max_ngram_size
        self.tokens: list[int] = []
        self._ends: dict[tuple[int, ...], list[int]] = {}

    def extend(self, new_tokens: list[int]) -> None:
        for token in new_tokens:
            self.tokens.append(token)
            end = len(self.tokens) - 1
            for size in range(1, min(self.max_ngram_size, len(self.tokens)) + 1):
                self._ends.setdefault(tuple(self.tokens[end - size + 1 : end + 1]), []).append(end)

    def continuations(
        self, key: list[int], length: int, *, copy_length: int | None = None
    ) -> list[tuple[int, list[int]]]:
        """``(match_length, continuation)`` for earlier occurrences of suffixes of ``key``, longest key first.

        A continuation has ``length`` tokens at most, or ``copy_length`` where the match has ``COPY_MIN_MATCH``
        tokens or more. The occurrence that ends at the very end of the indexed text is skipped (it has no
        continuation yet).
        """
        found: list[tuple[int, list[int]]] = []
        for size in range(min(self.max_ngram_size, len(key)), 0, -1):
            size_length = copy_length if copy_length is not None and size >= COPY_MIN_MATCH else length
            for end in reversed(self._ends.get(tuple(key[-size:]), ())):
                continuation = self.tokens[end + 1 : end + 1 + size_length]
                if continuation:
                    found.append((size, continuation))
        return found


class RecyclingPool:
    """The most recent rejected drafts of one row, searched for continuations of the committed text."""

    def __init__(self, capacity: int, max_ngram_size: int) -> None:
        self.max_ngram_size = max_ngram_size
        self._entries: deque[list[int]] = deque(maxlen=capacity)

    def add(self, tokens: list[int]) -> None:
        if len(tokens) >= 2:
            self._entries.append(list(tokens))

    def continuations(self, committed: list[int], length: int) -> list[tuple[int, list[int]]]:
        """``(match_length, continuation)`` wherever an entry contains the last committed token."""
        last = committed[-1]
        found: list[tuple[int, list[int]]] = []
        for entry in reversed(self._entries):
            for index, token in enumerate(entry[:-1]):
                if token != last:
                    continue
                match = 1
                while (
                    match < self.max_ngram_size
                    and match <= index
                    and match < len(committed)
                    and entry[index - match] == committed[-1 - match]
                ):
                    match += 1
                found.append((match, entry[index + 1 : index + 1 + length]))
        return found


def select_candidates(proposals: list[tuple[int, list[int]]], draft: list[int], limit: int) -> list[list[int]]:
    """Up to ``limit`` distinct candidates, longest key match first, skipping prefixes of the draft itself."""
    ranked = sorted(proposals, key=lambda proposal: -proposal[0])  # stable: recency order kept within a rank
    chosen: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for _, continuation in ranked:
        key = tuple(continuation)
        if key in seen or continuation == draft[: len(continuation)]:
            continue
        seen.add(key)
        chosen.append(continuation)
        if len(chosen) == limit:
            break
    return chosen
