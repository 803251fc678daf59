"""Append-only JSONL results files that let a killed run continue where it stopped.

The first line is a header holding the run's configuration (everything that changes the results). Each later
line is one finished unit of work (a problem, a prompt, a sweep cell on a prompt) under a unique ``key``,
written and flushed as soon as it finishes. Re-opening the file with the same configuration resumes: finished
keys are skipped. Re-opening it with another configuration is refused, naming the settings that differ.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.jsonl"
    >>> store = ResultsStore(path, {"model": "tiny", "max_new_tokens": 8})
    >>> store.append("prompt/0", {"tpf": 1.0})
    >>> ResultsStore(path, {"model": "tiny", "max_new_tokens": 8}).done_keys()
    {'prompt/0'}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import EvaluationInputError

FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so configurations compare reliably."""
    return json.loads(json.dumps(value))


class ResultsStore:
    """Records of one run, kept in memory and, when ``path`` is given, in an append-only JSONL file.

    Args:
        path: the JSONL file (created with its folder), or ``None`` for a run that keeps nothing on disk.
        config: the settings that determine the results; a file written with other settings is refused.
        fresh: discard an existing file instead of resuming it.

    Raises:
        EvaluationInputError: the file was written with another configuration, or is not a results file.
    """

    def __init__(self, path: str | os.PathLike | None, config: dict[str, Any], *, fresh: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.config = _plain(config)
        self._records: dict[str, dict[str, Any]] = {}
        if self.path is None:
            return
        if self.path.exists() and not fresh:
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"header": {"format": FORMAT_VERSION, "config": self.config}}, mode="w")

    def _load(self) -> None:
        assert self.path is not None
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]  # a line cut by a kill has no newline yet: drop it
        if len(complete) != len(raw):
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        lines = complete.decode("utf-8").splitlines()
        try:
            header = json.loads(lines[0])["header"] if lines else None
        except (json.JSONDecodeError, KeyError, TypeError):
            header = None
        if header is None:
            raise EvaluationInputError(
                f"{self.path} is not a results file of this harness; choose another output name or pass --fresh."
            )
        if header.get("config") != self.config:
            raise EvaluationInputError(self._mismatch_message(header.get("config") or {}))
        for line in lines[1:]:
            entry = json.loads(line)
            self._records[entry["key"]] = entry["record"]

    def _mismatch_message(self, saved: dict[str, Any]) -> str:
        names = sorted(set(saved) | set(self.config))
        differing = [
            f"{name}: file has {saved.get(name)!r}, this run has {self.config.get(name)!r}"
            for name in names
            if saved.get(name) != self.config.get(name)
        ]
        return (
            f"{self.path} holds results made with other arguments ({'; '.join(differing)}). "
            "Re-run with the same arguments to resume, choose another --name/--output-dir, "
            "or pass --fresh to start over."
        )

    def _write_line(self, entry: dict[str, Any], *, mode: str = "a") -> None:
        assert self.path is not None
        with open(self.path, mode, encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def done_keys(self) -> set[str]:
        """Keys of the finished units."""
        return set(self._records)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> dict[str, Any] | None:
        return self._records.get(key)

    def append(self, key: str, record: dict[str, Any]) -> None:
        """Store one finished unit (on disk first, flushed and synced)."""
        if key in self._records:
            raise ValueError(f"results for {key!r} are already stored.")
        record = _plain(record)
        if self.path is not None:
            self._write_line({"key": key, "record": record})
        self._records[key] = record

    def records(self) -> dict[str, dict[str, Any]]:
        """All stored records by key, in the order they finished."""
        return dict(self._records)
