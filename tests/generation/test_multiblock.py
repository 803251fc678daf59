"""When pseudo blocks open: the spawn threshold ceil(r * n) against the block size."""

from __future__ import annotations

import pytest

from jacobi_forcing_hf.generation.config import JacobiConfig
from jacobi_forcing_hf.generation.multiblock import BlockLayout, newest_block_progress, plan_window_end

LAYOUT = BlockLayout(prompt_length=10, block_size=4)


def _window_end(committed: int, *, activation_ratio: float) -> int:
    config = JacobiConfig(block_size=4, num_blocks=2, activation_ratio=activation_ratio)
    window_end = LAYOUT.end(LAYOUT.index_of(committed))  # the window spans the rest of the current block only
    return plan_window_end(
        LAYOUT,
        committed,
        window_end,
        newest_block_progress(LAYOUT, committed, window_end, stable=[False] * (window_end - committed)),
        num_blocks=config.effective_num_blocks,
        spawn_threshold=config.spawn_threshold,
        limit=100,
    )


@pytest.mark.parametrize("committed", range(10, 18))
def test_paper_ratio_never_opens_a_pseudo_block_at_n4(committed):
    # ceil(0.85 * 4) = 4 = n: a current block never holds 4 accepted tokens (it is replaced when it does)
    assert _window_end(committed, activation_ratio=0.85) == LAYOUT.end(LAYOUT.index_of(committed))


@pytest.mark.parametrize("committed", [11, 17])  # 1 token into block 0, 3 tokens into block 1
def test_low_ratio_opens_the_next_block_after_one_accepted_token(committed):
    current = LAYOUT.index_of(committed)
    assert _window_end(committed, activation_ratio=0.25) == LAYOUT.end(current + 1)
    assert _window_end(LAYOUT.start(current), activation_ratio=0.25) == LAYOUT.end(current)
