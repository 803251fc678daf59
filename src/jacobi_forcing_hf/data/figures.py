"""Pictures of packed training sequences: the prompt, each noisy block K_j and clean block L_j, and the noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROMPT_COLOUR = "#b0b0b0"
NOISY_COLOUR = "#f28e2b"
CLEAN_COLOUR = "#4e79a7"


def plot_packed_sequence(
    row: dict[str, Any], path: str | Path, *, target_ratios: list[float] | None = None, title: str | None = None
) -> Path:
    """Draw one packed row (from :func:`~jacobi_forcing_hf.data.packing.build_training_sequences`) as a PNG.

    Top: the sequence as segments on a token axis, prompt then ``K_j``/``L_j`` pairs, each ``K_j`` annotated with
    its noisy ratio. Bottom: the noisy ratio of every block's chosen state, with the schedule's ``target_ratios``
    when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    prompt_length, block_size, num_blocks = row["prompt_length"], row["block_size"], row["num_blocks"]
    ratios = row["noisy_ratios"]
    figure, (strip, noise) = plt.subplots(
        2, 1, figsize=(12, 4.8), gridspec_kw={"height_ratios": [1.3, 1]}, constrained_layout=True
    )
    strip.broken_barh([(0, prompt_length)], (0, 1), facecolors=PROMPT_COLOUR, edgecolor="white")
    strip.text(prompt_length / 2, 0.5, f"prompt\n{prompt_length} tokens", ha="center", va="center", fontsize=8)
    for block in range(num_blocks):
        noisy_start = prompt_length + 2 * block * block_size
        strip.broken_barh([(noisy_start, block_size)], (0, 1), facecolors=NOISY_COLOUR, edgecolor="white")
        strip.broken_barh([(noisy_start + block_size, block_size)], (0, 1), facecolors=CLEAN_COLOUR, edgecolor="white")
        if num_blocks <= 12:
            strip.text(noisy_start + block_size / 2, 0.5, f"K{block}", ha="center", va="center", fontsize=8)
            strip.text(noisy_start + 1.5 * block_size, 0.5, f"L{block}", ha="center", va="center", fontsize=8)
        strip.text(
            noisy_start + block_size / 2,
            1.08,
            f"{ratios[block]:.2f}",
            ha="center",
            va="bottom",
            fontsize=7,
            rotation=90,
        )
    strip.set_xlim(0, len(row["input_ids"]))
    strip.set_ylim(0, 1.9)
    strip.set_yticks([])
    strip.set_xlabel("token position in the packed sequence")
    strip.legend(
        handles=[
            Patch(color=PROMPT_COLOUR, label="prompt"),
            Patch(color=NOISY_COLOUR, label="K_j: noisy state (noisy ratio above)"),
            Patch(color=CLEAN_COLOUR, label="L_j: fixed point"),
        ],
        loc="upper right",
        fontsize=8,
        ncol=3,
    )
    strip.set_title(
        title
        or f"prompt {row['prompt_id']}: P = {prompt_length}, T = {num_blocks} blocks of n = {block_size}, "
        f"{len(row['input_ids'])} tokens"
    )

    blocks = list(range(num_blocks))
    noise.bar(blocks, ratios, color=NOISY_COLOUR, label="noisy ratio of the chosen state")
    if target_ratios is not None:
        noise.plot(blocks, target_ratios, "_", color="black", markersize=28, mew=2, label="schedule target")
    noise.set_xticks(blocks)
    noise.set_xlabel("block j")
    noise.set_ylabel("unconverged fraction")
    noise.set_ylim(0, 1.05)
    noise.legend(fontsize=8, loc="upper left")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
