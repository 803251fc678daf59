"""A corpus n-gram table: frequent continuations of short n-grams in the model's own earlier outputs.

Rejection recycling only knows the text of the current call (prompt, text so far, rejected drafts). Much of what a
code model writes recurs across calls instead (``for i in range(len(``, ``    return ``, a docstring's closing
lines), so a table built from the model's greedy outputs on other prompts proposes those continuations wherever the
current call has none. Its candidates are verified like any other, so decoding stays exactly greedy; a table only
changes how many tokens a forward accepts.

The file is JSON: ``{"format": "jacobi-forcing-ngram-table", "format_version": 1, "max_ngram_size": 3,
"continuation_length": 8, "entries": [[key tokens, [continuation, ...]], ...]}``, continuations most frequent first.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

FORMAT = "jacobi-forcing-ngram-table"
FORMAT_VERSION = 1


class NgramTable:
    """Key n-gram (1..``max_ngram_size`` tokens) -> its most frequent continuations in a corpus, best first."""

    def __init__(
        self, entries: dict[tuple[int, ...], list[list[int]]], *, max_ngram_size: int, continuation_length: int
    ) -> None:
        self.entries = entries
        self.max_ngram_size = max_ngram_size
        self.continuation_length = continuation_length

    @classmethod
    def from_sequences(
        cls,
        sequences: Iterable[Sequence[int]],
        *,
        max_ngram_size: int = 3,
        continuation_length: int = 8,
        continuations_per_key: int = 4,
        min_count: int = 2,
    ) -> NgramTable:
        """Count, for every n-gram of every sequence, the ``continuation_length`` tokens that follow it.

        Only continuations seen at least ``min_count`` times are kept (a continuation seen once is an accident of
        one output, and would only fill the query), ``continuations_per_key`` of them per key, most frequent first.
        """
        check_table_settings(
            max_ngram_size=max_ngram_size,
            continuation_length=continuation_length,
            continuations_per_key=continuations_per_key,
            min_count=min_count,
        )
        counts: defaultdict[tuple[int, ...], Counter[tuple[int, ...]]] = defaultdict(Counter)
        for sequence in sequences:
            tokens = list(sequence)
            for end in range(len(tokens) - 1):
                continuation = tuple(tokens[end + 1 : end + 1 + continuation_length])
                for size in range(1, min(max_ngram_size, end + 1) + 1):
                    counts[tuple(tokens[end - size + 1 : end + 1])][continuation] += 1
        entries = {}
        for key, counter in counts.items():
            frequent = [
                list(tokens) for tokens, count in counter.most_common(continuations_per_key) if count >= min_count
            ]
            if frequent:
                entries[key] = frequent
        return cls(entries, max_ngram_size=max_ngram_size, continuation_length=continuation_length)

    def __len__(self) -> int:
        return len(self.entries)

    def continuations(self, key: Sequence[int], length: int) -> list[tuple[int, list[int]]]:
        """``(match_length, continuation)`` for the suffixes of ``key`` in the table, longest suffix first."""
        found: list[tuple[int, list[int]]] = []
        for size in range(min(self.max_ngram_size, len(key)), 0, -1):
            for continuation in self.entries.get(tuple(key[-size:]), ()):
                found.append((size, continuation[:length]))
        return found

    def save(self, path: str | Path) -> Path:
        """Write the table as JSON (see the module docstring); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "max_ngram_size": self.max_ngram_size,
            "continuation_length": self.continuation_length,
            "entries": [[list(key), continuations] for key, continuations in self.entries.items()],
        }
        path.write_text(json.dumps(document, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> NgramTable:
        """Read a table written by :meth:`save`; a file of another format is refused with a clear error."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no n-gram table at {path}")
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file")
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {document.get('format_version')}; this version reads {FORMAT_VERSION}"
            )
        entries = {tuple(key): continuations for key, continuations in document["entries"]}
        return cls(
            entries,
            max_ngram_size=document["max_ngram_size"],
            continuation_length=document["continuation_length"],
        )


def check_table_settings(**settings: int) -> None:
    """Raise ``ValueError`` naming the first setting of :meth:`NgramTable.from_sequences` that is not a positive
    integer."""
    for name, value in settings.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def load_ngram_table(path: str) -> NgramTable:
    """:meth:`NgramTable.load`, cached: a generation config that names a table reads it once (again once the file
    changes)."""
    try:
        stat = Path(path).stat()
    except OSError:
        raise FileNotFoundError(f"no n-gram table at {path}") from None
    return _load_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _load_cached(path: str, modified_ns: int, size: int) -> NgramTable:
    return NgramTable.load(path)
