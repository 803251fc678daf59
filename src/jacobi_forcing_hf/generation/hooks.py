"""Hooks into the Jacobi engine: observe block states as they converge (trajectory recording and the like).

The engine calls a ``JacobiHooks`` object with plain Python token lists; hooks never change decoding. Logits
processing and stopping use transformers' own ``LogitsProcessorList`` and ``StoppingCriteriaList``, applied by the
engine per position with the exact prefix, so they need no hook here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class JacobiHooks:
    """Base class: override the events you need. Row indices are those of the input batch."""

    def on_block_state(self, row: int, block_index: int, prefix_length: int, state: list[int]) -> None:
        """Before a forward: the current block's n tokens (committed ones, then the draft)."""

    def on_block_complete(self, row: int, block_index: int, prefix_length: int, fixed_point: list[int]) -> None:
        """A block has all its tokens committed: ``fixed_point`` equals greedy decoding of those positions."""


@dataclass
class BlockTrajectory:
    """The Jacobi trajectory of one block of one row.

    Attributes:
        block_index: k, the block's index within the response.
        prefix_length: real (unpadded) tokens before the block: the prompt, then the earlier blocks.
        states: n-token states, ``states[0]`` the initial draft actually used, ``states[-1]`` the fixed point;
            consecutive duplicates are dropped.
    """

    block_index: int
    prefix_length: int
    states: list[list[int]] = field(default_factory=list)

    @property
    def fixed_point(self) -> list[int]:
        return self.states[-1]

    @property
    def num_iterations(self) -> int:
        """Forwards the block took: states before its fixed point."""
        return max(len(self.states) - 1, 1)


class TrajectoryRecorder(JacobiHooks):
    """Records every block's states, from the initial draft to the fixed point, for each row.

    Example:
        >>> recorder = TrajectoryRecorder()
        >>> recorder.on_block_state(0, 0, 5, [7, 1, 1])
        >>> recorder.on_block_state(0, 0, 5, [7, 8, 1])
        >>> recorder.on_block_complete(0, 0, 5, [7, 8, 9])
        >>> recorder.rows[0][0].states
        [[7, 1, 1], [7, 8, 1], [7, 8, 9]]
    """

    def __init__(self) -> None:
        self.rows: dict[int, list[BlockTrajectory]] = {}
        self._open: dict[tuple[int, int], BlockTrajectory] = {}

    def _block(self, row: int, block_index: int, prefix_length: int) -> BlockTrajectory:
        key = (row, block_index)
        if key not in self._open:
            self._open[key] = BlockTrajectory(block_index, prefix_length)
        return self._open[key]

    def on_block_state(self, row: int, block_index: int, prefix_length: int, state: list[int]) -> None:
        block = self._block(row, block_index, prefix_length)
        if not block.states or block.states[-1] != state:
            block.states.append(list(state))

    def on_block_complete(self, row: int, block_index: int, prefix_length: int, fixed_point: list[int]) -> None:
        block = self._block(row, block_index, prefix_length)
        if not block.states or block.states[-1] != fixed_point:
            block.states.append(list(fixed_point))
        self.rows.setdefault(row, []).append(self._open.pop((row, block_index)))
