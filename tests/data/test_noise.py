"""Noise schedules and the choice of a block's noisy state (REFERENCE §3.1)."""

from __future__ import annotations

import pytest

from jacobi_forcing_hf.data.noise import (
    noise_schedule,
    noisy_ratio,
    schedule_index,
    select_noisy_state,
)


def test_schedule_is_linspace_between_the_bounds():
    assert noise_schedule(16) == pytest.approx([i / 15 for i in range(16)])
    assert noise_schedule(3, 0.2, 0.6) == pytest.approx([0.2, 0.4, 0.6])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_size": 0}, "window_size must be an integer >= 1"),
        ({"window_size": 2.5}, "window_size must be an integer >= 1"),
        ({"window_size": 4, "min_noisy_ratio": -0.1}, "min_noisy_ratio must be a number in"),
        ({"window_size": 4, "max_noisy_ratio": 1.5}, "max_noisy_ratio must be a number in"),
        ({"window_size": 4, "min_noisy_ratio": 0.8, "max_noisy_ratio": 0.2}, "must not exceed"),
    ],
)
def test_bad_schedule_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        noise_schedule(**kwargs)


def test_progressive_is_a_saw_tooth_over_windows():
    assert [schedule_index(k, window_size=3) for k in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_reverse_goes_from_hard_to_easy_inside_each_window():
    assert [schedule_index(k, window_size=3, strategy="reverse") for k in range(7)] == [2, 1, 0, 2, 1, 0, 2]


def test_variant_shifts_the_phase():
    assert [schedule_index(k, window_size=4, variant=2) for k in range(4)] == [2, 3, 0, 1]


def test_random_is_deterministic_per_seed_prompt_and_block_and_covers_the_window():
    def draws(seed, prompt_id):
        return [schedule_index(k, window_size=8, strategy="random", seed=seed, prompt_id=prompt_id) for k in range(200)]

    assert draws(0, 5) == draws(0, 5)
    assert draws(0, 5) != draws(1, 5)
    assert draws(0, 5) != draws(0, 6)
    assert set(draws(0, 5)) == set(range(8))


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match=r"strategy='cyclic' is not supported; use one of \('progressive'"):
        schedule_index(0, window_size=4, strategy="cyclic")


@pytest.mark.parametrize(
    ("state", "ratio"),
    [([1, 2, 3, 4], 0.0), ([1, 2, 3, 0], 0.25), ([1, 0, 3, 4], 0.75), ([0, 2, 3, 4], 1.0)],
)
def test_noisy_ratio_counts_from_the_first_mismatch_to_the_end(state, ratio):
    assert noisy_ratio(state, [1, 2, 3, 4]) == ratio


def test_noisy_ratio_refuses_states_of_another_length():
    with pytest.raises(ValueError, match="3 tokens but its fixed point has 4"):
        noisy_ratio([1, 2, 3], [1, 2, 3, 4])


def test_selection_takes_the_nearest_ratio_and_the_earliest_on_ties():
    fixed_point = [1, 2, 3, 4]
    # ratios: 1.0, 0.75, 0.75, 0.25, 0.0
    states = [[0, 0, 0, 0], [1, 0, 0, 0], [1, 9, 9, 9], [1, 2, 3, 0], fixed_point]
    assert select_noisy_state(states, 1.0) == 0
    assert select_noisy_state(states, 0.7) == 1  # tie between 1 and 2 -> earliest
    assert select_noisy_state(states, 0.5) == 1  # 0.75 and 0.25 are equally far -> earliest
    assert select_noisy_state(states, 0.3) == 3
    assert select_noisy_state(states, 0.0) == 4
