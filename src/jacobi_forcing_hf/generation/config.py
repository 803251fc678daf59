"""The knobs of Jacobi decoding, their defaults, and how they are resolved and validated.

Every knob is also a plain attribute of ``model.generation_config`` (``generation_config.block_size = 32``), which
``save_pretrained``/``push_to_hub`` write and ``from_pretrained`` reads back. A call's keyword arguments win over the
generation config, which wins over the defaults below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .ngram_table import NgramTable, load_ngram_table

DECODING_METHODS: tuple[str, ...] = ("jacobi", "jacobi_mr")
DRAFT_INITIALIZERS: tuple[str, ...] = ("lookup", "random_context", "repeat_last")
# the ngram_table value that turns off a table set in the generation config
NO_NGRAM_TABLE = "none"
# Knobs that decode fastest on a CPU, where every extra query token costs time: short blocks, many candidates
# (measured on a 2-core CPU with the untrained SmolLM2-135M, docs/decoding.md), four runner-up first tokens, which
# raise TPF at the same tokens/s there (results/sweep_draft_alternatives.md), and copies of up to 32 tokens
# (results/sweep_copy_length.md). The defaults below suit a GPU and a Jacobi Forcing model trained with n = 16.
CPU_KNOBS: dict[str, int] = {
    "block_size": 4,
    "num_blocks": 2,
    "pool_size": 8,
    "draft_alternatives": 4,
    "copy_length": 32,
}


@dataclass
class JacobiConfig:
    """Settings of one Jacobi decoding call.

    Attributes:
        decoding: ``"jacobi"`` (one block in flight, no recycled candidates: plain Jacobi decoding with a KV cache)
            or ``"jacobi_mr"`` (multiblock decoding plus rejection recycling).
        block_size: n, the number of tokens of a block; the Jacobi window spans the rest of the current block.
        num_blocks: K, the most blocks in flight (``jacobi_mr`` only); pseudo blocks beyond the current one are
            refined ahead of time and keep their progress when they become current.
        activation_ratio: r, a new pseudo block is spawned once the newest block has ``ceil(r * n)`` tokens
            accepted (or, for a pseudo block, provisionally stable).
        pool_size: the most recycled n-gram candidates verified next to the Jacobi draft in one forward
            (``jacobi_mr`` only; 0 disables recycling).
        candidate_length: the most tokens of one recycled candidate (default: ``block_size``).
        copy_length: the most tokens of a candidate found in the prompt or the text so far after a key match of at
            least ``COPY_MIN_MATCH`` (2) tokens: text being copied, which goes on matching far longer than a block
            (default: ``candidate_length``).
        draft_alternatives: runner-up tokens of the prediction behind the first draft token (a prediction that saw
            a rejected token before it) verified as one-token branches next to it (``jacobi_mr`` only; 0 disables
            them).
        max_ngram_size: the longest suffix of the committed text used as a key to find recycled candidates.
        ngram_table: a corpus n-gram table (:class:`~jacobi_forcing_hf.generation.ngram_table.NgramTable`, or the
            path of one saved as JSON) whose continuations are verified as candidates too, ranked after the call's
            own text at the same key length (``jacobi_mr`` only; default: none; ``"none"`` turns off a table set in
            the generation config).
        recycle_capacity: how many recent rejected drafts the recycling pool remembers per row.
        draft_init: how the tokens of a newly opened block are initialised: ``"lookup"`` continues the text from
            an earlier occurrence of its last n-gram (prompt lookup), filling the rest from ``random_context``;
            ``"random_context"`` draws tokens uniformly from the prompt and the text so far (the reference);
            ``"repeat_last"`` repeats the last known token, a draft that depends on the text alone (no seed), so a
            model trained on such trajectories meets the same kind of first draft when it decodes.
        draft_seed: seed of the draft initialiser; decoding output never depends on it, only the speed does.
        prefill_draft: verify a first draft of block 0 inside the prefill forward.
        finish_block_on_stop: after a stopping criterion fires, keep iterating the row until its current block
            reaches its fixed point (trajectory collection needs full blocks); the returned tokens still end at
            the stop.
    """

    decoding: str = "jacobi_mr"
    block_size: int = 16
    num_blocks: int = 2
    activation_ratio: float = 0.85
    pool_size: int = 4
    candidate_length: int | None = None
    copy_length: int | None = None
    draft_alternatives: int = 0
    max_ngram_size: int = 3
    ngram_table: str | NgramTable | None = None
    recycle_capacity: int = 16
    draft_init: str = "lookup"
    draft_seed: int = 0
    prefill_draft: bool = True
    finish_block_on_stop: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def effective_num_blocks(self) -> int:
        """K as used: plain ``jacobi`` keeps one block in flight."""
        return self.num_blocks if self.decoding == "jacobi_mr" else 1

    @property
    def effective_pool_size(self) -> int:
        """Recycled candidates per forward as used: plain ``jacobi`` verifies none."""
        return self.pool_size if self.decoding == "jacobi_mr" else 0

    @property
    def effective_draft_alternatives(self) -> int:
        """Runner-up first tokens verified per forward as used: plain ``jacobi`` verifies none."""
        return self.draft_alternatives if self.decoding == "jacobi_mr" else 0

    @property
    def effective_candidate_length(self) -> int:
        return self.candidate_length if self.candidate_length is not None else self.block_size

    @property
    def effective_copy_length(self) -> int:
        return self.copy_length if self.copy_length is not None else self.effective_candidate_length

    @property
    def effective_ngram_table(self) -> NgramTable | None:
        """The n-gram table as used (read once per path); plain ``jacobi`` verifies no candidates, so none."""
        if self.ngram_table in (None, NO_NGRAM_TABLE) or self.decoding != "jacobi_mr":
            return None
        if isinstance(self.ngram_table, NgramTable):
            return self.ngram_table
        return load_ngram_table(str(self.ngram_table))

    @property
    def spawn_threshold(self) -> int:
        """Accepted tokens of the newest block that open the next pseudo block: ``ceil(r * n)``."""
        return math.ceil(self.activation_ratio * self.block_size)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first argument outside its allowed values."""
        if self.decoding not in DECODING_METHODS:
            raise ValueError(f"decoding={self.decoding!r} is not supported; use one of {DECODING_METHODS}.")
        _require_int("block_size", self.block_size, minimum=1)
        _require_int("num_blocks", self.num_blocks, minimum=1)
        _require_int("pool_size", self.pool_size, minimum=0)
        _require_int("draft_alternatives", self.draft_alternatives, minimum=0)
        _require_int("max_ngram_size", self.max_ngram_size, minimum=1)
        _require_int("recycle_capacity", self.recycle_capacity, minimum=1)
        for name in ("candidate_length", "copy_length"):
            if getattr(self, name) is not None:
                _require_int(name, getattr(self, name), minimum=1)
        if isinstance(self.activation_ratio, bool) or not isinstance(self.activation_ratio, (int, float)):
            raise ValueError(f"activation_ratio must be a number in (0, 1], got {self.activation_ratio!r}.")
        if not 0.0 < float(self.activation_ratio) <= 1.0:
            raise ValueError(f"activation_ratio must be in (0, 1], got {self.activation_ratio}.")
        if self.ngram_table is not None and not isinstance(self.ngram_table, (str, Path, NgramTable)):
            raise ValueError(
                f"ngram_table must be an NgramTable or the path of one, got {type(self.ngram_table).__name__}."
            )
        if isinstance(self.ngram_table, (str, Path)) and self.ngram_table != NO_NGRAM_TABLE:
            try:
                load_ngram_table(str(self.ngram_table))
            except (OSError, ValueError) as error:
                raise ValueError(f"ngram_table: {error}") from error
        if self.draft_init not in DRAFT_INITIALIZERS:
            raise ValueError(f"draft_init={self.draft_init!r} is not supported; use one of {DRAFT_INITIALIZERS}.")

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))

    @classmethod
    def resolve(cls, generation_config: Any = None, **overrides: Any) -> JacobiConfig:
        """Build a config from explicit ``overrides`` (None = not given), then ``generation_config`` attributes."""
        values: dict[str, Any] = {}
        for name in cls.knob_names():
            if overrides.get(name) is not None:
                values[name] = overrides[name]
            elif generation_config is not None and getattr(generation_config, name, None) is not None:
                values[name] = getattr(generation_config, name)
        unknown = set(overrides) - set(cls.knob_names())
        if unknown:
            raise ValueError(f"unknown Jacobi decoding arguments {sorted(unknown)}; known: {cls.knob_names()}.")
        return cls(**values)


def _require_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
