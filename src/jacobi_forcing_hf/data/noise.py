"""Noise schedules: which state of a block's Jacobi trajectory becomes the noisy block of a training sequence.

A block's trajectory runs from the initial draft to the fixed point (FP). The *noisy ratio* of a state is the
fraction of the block from its first token that differs from the FP to the end: ``(n - first_mismatch) / n``,
so the FP has ratio 0 and a draft whose first token is already wrong has ratio 1. A schedule gives each block
of a response a *target* ratio; the state nearest to it is chosen (REFERENCE §3.1).

Strategies, for block ``k`` of a response and a window of ``w`` ratios ``linspace(min, max, w)``:

* ``"progressive"`` (the reference): index ``k mod w``, a saw-tooth from easy to hard inside each window of
  ``w`` consecutive blocks;
* ``"reverse"``: index ``w - 1 - (k mod w)``, hard to easy inside each window;
* ``"random"``: an index drawn uniformly, deterministic per ``(seed, prompt_id, k)``.

A *variant* ``v`` (for several packings of one response) shifts the phase: progressive and reverse use ``k +
v`` in place of ``k``; random mixes ``v`` into its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .validation import require_int

NOISE_STRATEGIES: tuple[str, ...] = ("progressive", "random", "reverse")

# Distances closer than this count as a tie, so that ties go to the earliest state despite float rounding.
_TIE_TOLERANCE = 1e-9


def validate_noise_arguments(
    *, window_size: int, min_noisy_ratio: float, max_noisy_ratio: float, strategy: str = "progressive"
) -> None:
    """Raise ``ValueError`` naming the first noise argument outside its allowed values."""
    require_int("window_size", window_size, minimum=1)
    for name, value in (("min_noisy_ratio", min_noisy_ratio), ("max_noisy_ratio", max_noisy_ratio)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    if min_noisy_ratio > max_noisy_ratio:
        raise ValueError(f"min_noisy_ratio ({min_noisy_ratio}) must not exceed max_noisy_ratio ({max_noisy_ratio}).")
    if strategy not in NOISE_STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not supported; use one of {NOISE_STRATEGIES}.")


def noise_schedule(window_size: int, min_noisy_ratio: float = 0.0, max_noisy_ratio: float = 1.0) -> list[float]:
    """The ``window_size`` target ratios ``linspace(min_noisy_ratio, max_noisy_ratio, window_size)``.

    Example:
        >>> noise_schedule(5)
        [0.0, 0.25, 0.5, 0.75, 1.0]
        >>> noise_schedule(1, 0.2, 0.8)
        [0.2]
    """
    validate_noise_arguments(window_size=window_size, min_noisy_ratio=min_noisy_ratio, max_noisy_ratio=max_noisy_ratio)
    return [float(ratio) for ratio in np.linspace(min_noisy_ratio, max_noisy_ratio, window_size)]


def schedule_index(
    block_index: int,
    *,
    window_size: int,
    strategy: str = "progressive",
    seed: int = 0,
    prompt_id: int = 0,
    variant: int = 0,
) -> int:
    """Index into :func:`noise_schedule` for block ``block_index`` of a response.

    Example:
        >>> [schedule_index(k, window_size=4) for k in range(6)]
        [0, 1, 2, 3, 0, 1]
        >>> [schedule_index(k, window_size=4, strategy="reverse") for k in range(6)]
        [3, 2, 1, 0, 3, 2]
        >>> [schedule_index(k, window_size=4, variant=1) for k in range(3)]
        [1, 2, 3]
    """
    validate_noise_arguments(window_size=window_size, min_noisy_ratio=0.0, max_noisy_ratio=1.0, strategy=strategy)
    phase = block_index + variant
    if strategy == "progressive":
        return phase % window_size
    if strategy == "reverse":
        return window_size - 1 - phase % window_size
    for name, value in (
        ("seed", seed),
        ("prompt_id", prompt_id),
        ("block_index", block_index),
        ("variant", variant),
    ):
        if value < 0:
            raise ValueError(f"the random strategy needs {name} >= 0, got {value}.")
    generator = np.random.default_rng([seed, prompt_id, block_index, variant])
    return int(generator.integers(window_size))


def noisy_ratio(state: Sequence[int], fixed_point: Sequence[int]) -> float:
    """Fraction of the block from the first token where ``state`` differs from ``fixed_point`` to the end.

    Example:
        >>> noisy_ratio([5, 6, 0, 8], [5, 6, 7, 8])
        0.5
        >>> noisy_ratio([5, 6, 7, 8], [5, 6, 7, 8])
        0.0
    """
    if len(state) != len(fixed_point):
        raise ValueError(f"a state has {len(state)} tokens but its fixed point has {len(fixed_point)}.")
    size = len(fixed_point)
    first_mismatch = next((i for i, (a, b) in enumerate(zip(state, fixed_point)) if a != b), size)
    return (size - first_mismatch) / size


def select_noisy_state(states: Sequence[Sequence[int]], target_ratio: float) -> int:
    """Index of the state whose noisy ratio (against ``states[-1]``, the fixed point) is nearest
    ``target_ratio``.

    Ties go to the earliest state.

    Example:
        >>> states = [[9, 9, 9, 9], [5, 9, 9, 9], [5, 6, 7, 9], [5, 6, 7, 8]]
        >>> select_noisy_state(states, 0.8)
        1
        >>> select_noisy_state(states, 0.0)
        3
    """
    if not states:
        raise ValueError("a block needs at least one state (its fixed point) to select from.")
    fixed_point = states[-1]
    distances = [abs(noisy_ratio(state, fixed_point) - target_ratio) for state in states]
    best = min(distances)
    return next(i for i, distance in enumerate(distances) if distance <= best + _TIE_TOLERANCE)
