"""Pack Jacobi trajectories into training sequences ``prompt ‖ K_0 ‖ L_0 ‖ … ‖ K_{T-1} ‖ L_{T-1}``.

``K_j`` is the noisy state of block ``j`` picked by the noise schedule (:mod:`.noise`), ``L_j`` its fixed
point. The input is the trajectories dataset of :func:`jacobi_forcing_hf.collect_trajectories` (one row per
prompt and block); the output has one row per prompt (or ``num_variants`` rows, each with other noisy states).

Deliberate difference from the reference (REFERENCE §3.2): the prompt is taken from block 0's prefix, never
from whichever block happened to be merged first, and a response whose blocks are not exactly ``0 … T-1`` is
an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .noise import noise_schedule, noisy_ratio, schedule_index, select_noisy_state, validate_noise_arguments
from .validation import require_int

if TYPE_CHECKING:
    import datasets

TRAJECTORY_COLUMNS: tuple[str, ...] = ("prompt_id", "block_index", "prefix_ids", "states")


def packed_features() -> datasets.Features:
    """Column types of a packed dataset."""
    from datasets import Features, List, Value

    return Features(
        {
            "prompt_id": Value("int64"),
            "variant": Value("int32"),
            "input_ids": List(Value("int32")),
            "prompt_length": Value("int32"),
            "num_blocks": Value("int32"),
            "block_size": Value("int32"),
            "noisy_state_indices": List(Value("int32")),
            "noisy_ratios": List(Value("float32")),
        }
    )


def build_training_sequences(
    trajectories: datasets.Dataset,
    *,
    block_size: int,
    window_size: int,
    strategy: str = "progressive",
    min_noisy_ratio: float = 0.0,
    max_noisy_ratio: float = 1.0,
    seed: int = 0,
    max_length: int | None = None,
    num_variants: int = 1,
) -> datasets.Dataset:
    """Training sequences from Jacobi trajectories, one row per prompt and variant, sorted by (prompt,
    variant).

    Args:
        trajectories: rows with ``prompt_id``, ``block_index``, ``prefix_ids`` and ``states`` (``states[-1]``
            is the block's fixed point), as written by :func:`jacobi_forcing_hf.collect_trajectories`.
        block_size: n; every state must have exactly n tokens.
        window_size: w, the number of target ratios ``linspace(min_noisy_ratio, max_noisy_ratio, w)``.
        strategy: ``"progressive"``, ``"random"`` or ``"reverse"`` (see :mod:`jacobi_forcing_hf.data.noise`).
        seed: seed of the ``"random"`` strategy; the result is deterministic for a seed.
        max_length: drop sequences longer than this many tokens.
        num_variants: packings per prompt; variant ``v`` shifts the schedule's phase by ``v`` blocks
            (``"random"``: mixes ``v`` into the seed), so the variants of one response use other noisy states.

    Returns:
        A ``datasets.Dataset`` with ``input_ids`` (prompt ‖ K_0 ‖ L_0 ‖ …), ``prompt_length`` (P),
        ``num_blocks`` (T), ``block_size`` (n), ``prompt_id``, ``variant``, and for inspection
        ``noisy_state_indices`` (the chosen state of each block) and ``noisy_ratios`` (their unconverged
        fractions).
    """
    from datasets import Dataset
    from datasets.fingerprint import Hasher

    validate_noise_arguments(
        window_size=window_size,
        min_noisy_ratio=min_noisy_ratio,
        max_noisy_ratio=max_noisy_ratio,
        strategy=strategy,
    )
    require_int("block_size", block_size, minimum=1)
    require_int("num_variants", num_variants, minimum=1)
    if max_length is not None:
        require_int("max_length", max_length, minimum=1)
    missing = [name for name in TRAJECTORY_COLUMNS if name not in trajectories.column_names]
    if missing:
        raise ValueError(
            f"trajectories lack the columns {missing}; found {trajectories.column_names}. "
            "Collect them with jacobi_forcing_hf.collect_trajectories."
        )
    if len(trajectories) == 0:
        raise ValueError("trajectories is empty: there is nothing to pack.")
    _check_block_size(trajectories[0], block_size)

    groups = _group_rows_by_prompt(trajectories)
    jobs = Dataset.from_dict(
        {
            "prompt_id": [prompt_id for prompt_id, _ in groups for _ in range(num_variants)],
            "row_indices": [rows for _, rows in groups for _ in range(num_variants)],
            "variant": [variant for _ in groups for variant in range(num_variants)],
        }
    )
    settings = {
        "block_size": block_size,
        "schedule": noise_schedule(window_size, min_noisy_ratio, max_noisy_ratio),
        "strategy": strategy,
        "seed": seed,
        "max_length": max_length,
    }
    return jobs.map(
        _pack_jobs,
        batched=True,
        batch_size=64,
        fn_kwargs={"trajectories": trajectories, **settings},
        remove_columns=jobs.column_names,
        features=packed_features(),
        # The fingerprint names the input and the settings, so datasets need not pickle the trajectories to
        # hash.
        new_fingerprint=Hasher.hash([trajectories._fingerprint, num_variants, settings]),
        desc="Packing training sequences",
    )


def pack_response(
    blocks: list[dict[str, Any]],
    *,
    block_size: int,
    schedule: list[float],
    strategy: str,
    seed: int,
    variant: int = 0,
) -> dict[str, Any]:
    """One training sequence from the trajectory rows of one response, sorted by ``block_index`` from 0."""
    prompt = list(blocks[0]["prefix_ids"])
    prompt_id = blocks[0]["prompt_id"]
    input_ids = list(prompt)
    chosen_indices: list[int] = []
    chosen_ratios: list[float] = []
    for block in blocks:
        _check_block_size(block, block_size)
        expected_prefix = len(prompt) + block["block_index"] * block_size
        if len(block["prefix_ids"]) != expected_prefix:
            raise ValueError(
                f"prompt_id {prompt_id}, block {block['block_index']}: prefix has {len(block['prefix_ids'])} "
                f"tokens, expected {expected_prefix} (block 0's prompt plus the earlier blocks); the "
                "trajectories are mixed up."
            )
        states = block["states"]
        index = schedule_index(
            block["block_index"],
            window_size=len(schedule),
            strategy=strategy,
            seed=seed,
            prompt_id=prompt_id,
            variant=variant,
        )
        chosen = select_noisy_state(states, schedule[index])
        input_ids += list(states[chosen]) + list(states[-1])
        chosen_indices.append(chosen)
        chosen_ratios.append(noisy_ratio(states[chosen], states[-1]))
    return {
        "prompt_id": prompt_id,
        "variant": variant,
        "input_ids": input_ids,
        "prompt_length": len(prompt),
        "num_blocks": len(blocks),
        "block_size": block_size,
        "noisy_state_indices": chosen_indices,
        "noisy_ratios": chosen_ratios,
    }


def _pack_jobs(
    jobs: dict[str, list],
    *,
    trajectories: datasets.Dataset,
    block_size: int,
    schedule: list[float],
    strategy: str,
    seed: int,
    max_length: int | None,
) -> dict[str, list]:
    packed: dict[str, list] = {name: [] for name in packed_features()}
    for row_indices, variant in zip(jobs["row_indices"], jobs["variant"]):
        columns = trajectories[row_indices]
        blocks = [dict(zip(columns, values)) for values in zip(*columns.values())]
        row = pack_response(
            blocks, block_size=block_size, schedule=schedule, strategy=strategy, seed=seed, variant=variant
        )
        if max_length is None or len(row["input_ids"]) <= max_length:
            for name, value in row.items():
                packed[name].append(value)
    return packed


def _group_rows_by_prompt(trajectories: datasets.Dataset) -> list[tuple[int, list[int]]]:
    """``(prompt_id, row indices by block_index)`` per prompt, by prompt_id; blocks must be 0 … T-1."""
    keys = trajectories.select_columns(["prompt_id", "block_index"]).with_format("numpy")
    prompt_ids = np.asarray(keys["prompt_id"])
    block_indices = np.asarray(keys["block_index"])
    order = np.lexsort((block_indices, prompt_ids))
    starts = np.flatnonzero(np.r_[True, prompt_ids[order][1:] != prompt_ids[order][:-1]])
    groups = []
    for rows in np.split(order, starts[1:]):
        found = block_indices[rows]
        if not np.array_equal(found, np.arange(len(rows))):
            raise ValueError(
                f"prompt_id {prompt_ids[rows[0]]} has blocks {found.tolist()}; a response needs blocks "
                "0 … T-1, each exactly once. Finish the collection (or remove that prompt) before packing."
            )
        groups.append((prompt_ids[rows[0]].item(), rows.tolist()))
    return groups


def _check_block_size(block: dict[str, Any], block_size: int) -> None:
    for state in block["states"]:
        if len(state) != block_size:
            raise ValueError(
                f"the trajectories have block size {len(state)} (prompt_id {block['prompt_id']}, block "
                f"{block['block_index']}) but block_size={block_size} was given; pack them with "
                f"block_size={len(state)} or collect new trajectories."
            )
