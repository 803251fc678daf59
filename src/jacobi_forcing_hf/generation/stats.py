"""Per-call statistics of Jacobi decoding: forwards, tokens committed per forward, tokens per forward (TPF)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JacobiStats:
    """What one ``generate`` call did, row by row.

    After a call, ``model.jacobi_stats`` holds this object (and ``output.jacobi_stats`` too when
    ``return_dict_in_generate=True``).

    Attributes:
        forwards: model forward calls made by the call, the prefill included.
        row_forwards: for each row, the forwards it took part in (a finished row stops costing forwards).
        new_tokens: for each row, the tokens it generated (up to and including its stop token).
        committed_per_forward: for each row, the tokens committed by each of its forwards.
        query_tokens: for each forward, the query length fed to the model (draft, candidates and padding).
    """

    forwards: int = 0
    row_forwards: list[int] = field(default_factory=list)
    new_tokens: list[int] = field(default_factory=list)
    committed_per_forward: list[list[int]] = field(default_factory=list)
    query_tokens: list[int] = field(default_factory=list)

    @classmethod
    def for_rows(cls, batch_size: int) -> JacobiStats:
        return cls(
            row_forwards=[0] * batch_size,
            new_tokens=[0] * batch_size,
            committed_per_forward=[[] for _ in range(batch_size)],
        )

    @property
    def tpf(self) -> float:
        """Tokens per forward over the batch: all new tokens / all row forwards (greedy decoding gives 1.0)."""
        total_forwards = sum(self.row_forwards)
        return sum(self.new_tokens) / total_forwards if total_forwards else 0.0

    @property
    def row_tpf(self) -> list[float]:
        """Tokens per forward of each row."""
        return [tokens / forwards if forwards else 0.0 for tokens, forwards in zip(self.new_tokens, self.row_forwards)]
