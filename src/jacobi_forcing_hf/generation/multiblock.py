"""Blocks in flight: where the Jacobi window of a row ends, and when a pseudo block opens.

Positions are absolute token indices of a row (its unpadded prompt starts at 0). Block k covers
``[prompt_length + k*n, prompt_length + (k+1)*n)``. The window of a row covers the not yet committed positions up
to the end of its last block in flight: the rest of the current block, then up to K-1 pseudo blocks.

Unlike the reference, a pseudo block is not a separate object: it is the part of the window past the current block.
When the current block completes, the next block simply is current, with the tokens the window refined for it:
its progress carries over (the reference throws it away, REFERENCE.md §5.3). Acceptance is one rule for the whole
window (each token must equal the greedy prediction of its exact prefix), so it may run past a block boundary.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockLayout:
    """Block arithmetic of one row."""

    prompt_length: int
    block_size: int

    def index_of(self, position: int) -> int:
        return (position - self.prompt_length) // self.block_size

    def start(self, block_index: int) -> int:
        return self.prompt_length + block_index * self.block_size

    def end(self, block_index: int) -> int:
        return self.start(block_index + 1)


def plan_window_end(
    layout: BlockLayout,
    committed: int,
    window_end: int,
    newest_block_progress: int,
    *,
    num_blocks: int,
    spawn_threshold: int,
    limit: int,
) -> int:
    """The window's new end: at least the current block's end; one more block when the newest block is ripe.

    Args:
        committed: positions below this are committed (the next position to decode).
        window_end: the current end of the window.
        newest_block_progress: accepted (current block) or provisionally stable (pseudo block) leading tokens of
            the newest block in flight.
        num_blocks: K, the most blocks in flight.
        spawn_threshold: ``ceil(r * n)``.
        limit: no position at or past this is drafted (generation budget, model context).
    """
    current = layout.index_of(committed)
    end = max(window_end, layout.end(current))
    newest = layout.index_of(end - 1)
    if newest - current + 1 < num_blocks and newest_block_progress >= spawn_threshold:
        end = layout.end(newest + 1)
    return min(end, limit)


def newest_block_progress(layout: BlockLayout, committed: int, window_end: int, stable: list[bool]) -> int:
    """Leading settled tokens of the newest block in flight.

    For the current block that is its committed tokens; for a pseudo block, its leading window tokens that the
    last forward left unchanged (``stable`` is indexed by window offset, position ``committed + offset``).
    """
    if window_end <= committed:
        return committed - layout.start(layout.index_of(committed))
    newest = layout.index_of(window_end - 1)
    newest_start = layout.start(newest)
    if newest_start <= committed:
        return committed - newest_start
    progress = 0
    for offset in range(newest_start - committed, window_end - committed):
        if not stable[offset]:
            break
        progress += 1
    return progress
