"""Small datasets in the schemas of our trajectories and packed training data, for push tests."""

from __future__ import annotations

import random

import datasets


def make_trajectories(num_prompts: int = 3, blocks_per_prompt: int = 2, block_size: int = 4, seed: int = 0):
    """A small trajectories dataset in the schema of ``collect_trajectories``: per block, the states from a
    draft to the fixed point, the prefix before the block, and the prompt's complete output."""
    rng = random.Random(seed)
    rows = {"prompt_id": [], "block_index": [], "prefix_ids": [], "states": [], "output_ids": []}
    for prompt_id in range(num_prompts):
        prompt = [rng.randrange(3, 128) for _ in range(rng.randrange(3, 7))]
        fixed_points = [[rng.randrange(3, 128) for _ in range(block_size)] for _ in range(blocks_per_prompt)]
        output = prompt + [token for block in fixed_points for token in block]
        for block_index, fixed_point in enumerate(fixed_points):
            states = [[rng.randrange(3, 128) for _ in range(block_size)] for _ in range(rng.randrange(1, 4))]
            rows["prompt_id"].append(prompt_id)
            rows["block_index"].append(block_index)
            rows["prefix_ids"].append(prompt + [t for block in fixed_points[:block_index] for t in block])
            rows["states"].append([*states, fixed_point])
            rows["output_ids"].append(output)
    return datasets.Dataset.from_dict(rows)


def make_training_data(trajectories, block_size: int = 4):
    """Packed sequences (prompt ‖ noisy₀ ‖ clean₀ ‖ …) built from ``make_trajectories`` rows."""
    by_prompt: dict[int, list[dict]] = {}
    for row in trajectories:
        by_prompt.setdefault(row["prompt_id"], []).append(row)
    rows = {"input_ids": [], "prompt_length": [], "num_blocks": [], "prompt_id": []}
    for prompt_id, blocks in sorted(by_prompt.items()):
        blocks.sort(key=lambda row: row["block_index"])
        prompt = blocks[0]["prefix_ids"]
        sequence = list(prompt)
        for row in blocks:
            sequence += row["states"][0] + row["states"][-1]
        rows["input_ids"].append(sequence)
        rows["prompt_length"].append(len(prompt))
        rows["num_blocks"].append(len(blocks))
        rows["prompt_id"].append(prompt_id)
    return datasets.Dataset.from_dict(rows)
