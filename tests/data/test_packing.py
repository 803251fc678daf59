"""Packing trajectories into prompt ‖ K_0 ‖ L_0 ‖ … sequences (REFERENCE §3.1–3.2, prompt race fixed)."""

from __future__ import annotations

import datasets
import pytest

from jacobi_forcing_hf.data.noise import noisy_ratio
from jacobi_forcing_hf.data.packing import build_training_sequences

BLOCK_SIZE = 4


def block_states(fixed_point: list[int]) -> list[list[int]]:
    """n + 1 states with noisy ratios 1, 3/4, 2/4, 1/4, 0 (the last is the fixed point)."""
    noise = [90 + t for t in fixed_point]
    return [fixed_point[:converged] + noise[converged:] for converged in range(len(fixed_point) + 1)]


def response_rows(prompt_id: int, prompt: list[int], fixed_points: list[list[int]]) -> list[dict]:
    rows, prefix = [], list(prompt)
    for block_index, fixed_point in enumerate(fixed_points):
        rows.append(
            {
                "prompt_id": prompt_id,
                "block_index": block_index,
                "prompt_length": len(prompt),
                "prefix_ids": list(prefix),
                "states": block_states(fixed_point),
                "output_ids": fixed_point,
                "num_iterations": BLOCK_SIZE,
            }
        )
        prefix += fixed_point
    return rows


def fixed_points(seed: int, num_blocks: int) -> list[list[int]]:
    return [[seed + 10 * k + t for t in range(BLOCK_SIZE)] for k in range(num_blocks)]


@pytest.fixture
def trajectories() -> datasets.Dataset:
    rows = response_rows(7, [1, 2, 3], fixed_points(10, 5)) + response_rows(2, [4, 5], fixed_points(20, 3))
    return datasets.Dataset.from_list(rows[::-1])  # shuffled order: later blocks come first


def pack(trajectories, **kwargs):
    return build_training_sequences(trajectories, **{"block_size": BLOCK_SIZE, "window_size": 5, **kwargs})


def test_sequence_is_prompt_then_noisy_and_clean_block_pairs(trajectories):
    packed = pack(trajectories)
    assert packed["prompt_id"] == [2, 7]
    row = packed[1]
    fps = fixed_points(10, 5)
    assert row["prompt_length"] == 3 and row["num_blocks"] == 5 and row["block_size"] == BLOCK_SIZE
    assert len(row["input_ids"]) == 3 + 2 * 5 * BLOCK_SIZE
    assert row["input_ids"][:3] == [1, 2, 3]
    for j, fixed_point in enumerate(fps):
        start = 3 + 2 * j * BLOCK_SIZE
        noisy = row["input_ids"][start : start + BLOCK_SIZE]
        clean = row["input_ids"][start + BLOCK_SIZE : start + 2 * BLOCK_SIZE]
        assert clean == fixed_point
        assert noisy == block_states(fixed_point)[row["noisy_state_indices"][j]]
        assert row["noisy_ratios"][j] == pytest.approx(noisy_ratio(noisy, fixed_point))


def test_progressive_schedule_picks_states_of_increasing_noise(trajectories):
    row = pack(trajectories, window_size=5)[1]
    # schedule 0, 1/4, 2/4, 3/4, 1 -> states FP, 3, 2, 1, 0 of the n + 1 states
    assert row["noisy_ratios"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert row["noisy_state_indices"] == [4, 3, 2, 1, 0]
    wrapped = pack(trajectories, window_size=3)[1]
    assert wrapped["noisy_ratios"] == pytest.approx([0.0, 0.5, 1.0, 0.0, 0.5])


def test_reverse_schedule_goes_from_hard_to_easy(trajectories):
    row = pack(trajectories, strategy="reverse")[1]
    assert row["noisy_ratios"] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])


def test_random_schedule_is_deterministic_for_a_seed(trajectories):
    first = pack(trajectories, strategy="random", seed=3)
    assert first["noisy_state_indices"] == pack(trajectories, strategy="random", seed=3)["noisy_state_indices"]
    others = [pack(trajectories, strategy="random", seed=s)["noisy_state_indices"] for s in range(4, 8)]
    assert any(other != first["noisy_state_indices"] for other in others)


def test_variants_use_other_noisy_states(trajectories):
    packed = pack(trajectories, num_variants=3)
    assert packed["prompt_id"] == [2, 2, 2, 7, 7, 7]
    assert packed["variant"] == [0, 1, 2, 0, 1, 2]
    variants_of_7 = packed.filter(lambda row: row["prompt_id"] == 7)
    assert variants_of_7[1]["noisy_ratios"] == pytest.approx([0.25, 0.5, 0.75, 1.0, 0.0])
    assert len({tuple(row["input_ids"]) for row in variants_of_7}) == 3


def test_prompt_comes_from_block_zero_whatever_the_row_order(trajectories):
    # Rows arrive block 4 first; the reference kept the first merged record's prefix (prompt + 4 blocks).
    assert trajectories[0]["block_index"] == 2 and trajectories[0]["prompt_id"] == 2
    packed = pack(trajectories)
    assert packed[0]["input_ids"][:2] == [4, 5] and packed[0]["prompt_length"] == 2


def test_max_length_drops_longer_sequences(trajectories):
    packed = pack(trajectories, max_length=2 + 2 * 3 * BLOCK_SIZE)
    assert packed["prompt_id"] == [2]


def test_missing_block_is_an_error(trajectories):
    gappy = trajectories.filter(lambda row: not (row["prompt_id"] == 7 and row["block_index"] == 2))
    with pytest.raises(ValueError, match=r"prompt_id 7 has blocks \[0, 1, 3, 4\]; a response needs blocks 0"):
        pack(gappy)


def test_duplicated_block_is_an_error(trajectories):
    doubled = datasets.concatenate_datasets([trajectories, trajectories.select([0])])
    with pytest.raises(ValueError, match=r"prompt_id 2 has blocks \[0, 1, 2, 2\]"):
        pack(doubled)


def test_mixed_up_prefix_is_an_error(trajectories):
    def shorten(row):
        if row["prompt_id"] == 7 and row["block_index"] == 3:
            row["prefix_ids"] = row["prefix_ids"][:-1]
        return row

    with pytest.raises(ValueError, match="prompt_id 7, block 3: prefix has 14 tokens, expected 15"):
        pack(trajectories.map(shorten))


def test_other_block_size_is_an_error_naming_the_one_found(trajectories):
    with pytest.raises(ValueError, match=r"the trajectories have block size 4 .* but block_size=8 was given"):
        pack(trajectories, block_size=8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 0}, "window_size must be an integer >= 1"),
        ({"strategy": "cyclic"}, "strategy='cyclic' is not supported"),
        ({"num_variants": 0}, "num_variants must be an integer >= 1"),
        ({"max_length": 0}, "max_length must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_refused(trajectories, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pack(trajectories, **kwargs)


def test_missing_columns_and_empty_input_are_refused(trajectories):
    with pytest.raises(ValueError, match=r"lack the columns \['states'\]; found"):
        pack(trajectories.remove_columns("states"))
    with pytest.raises(ValueError, match="trajectories is empty"):
        pack(trajectories.select([]))
