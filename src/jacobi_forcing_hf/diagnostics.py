"""What Jacobi decoding needs from a model, measured on trajectories: does each draft position predict the fixed point?

Greedy Jacobi decoding accepts a block's tokens only as far as the model's predictions from the current draft already
equal the block's fixed point. So the number that explains TPF is, for every recorded Jacobi state of a block (the
draft after k iterations) and every offset t in the block, whether the model's prediction of token t from
``prefix ‖ state[:t]`` equals the fixed point's token t. :func:`fixed_point_agreement` computes that fraction by offset
and by iteration, split into positions whose draft prefix inside the block is still right (ordinary next-token
prediction) and positions behind a wrong draft token (what consistency training must teach). A consistency loss that
falls on training states without this fraction rising on held-out states explains a TPF that does not move.

Example:
    >>> from jacobi_forcing_hf.diagnostics import fixed_point_agreement  # doctest: +SKIP
    >>> trajectories = jf.collect_trajectories(model, tok, held_out, block_size=16, max_new_tokens=8)  # doctest: +SKIP
    >>> report = fixed_point_agreement(model, trajectories)  # doctest: +SKIP
    >>> report["by_offset"]["noisy_prefix"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

GROUPS = ("all", "clean_prefix", "noisy_prefix")


@torch.no_grad()
def fixed_point_agreement(model: Any, trajectories: Any, *, max_states_per_forward: int = 16) -> dict[str, Any]:
    """Fraction of draft positions whose greedy prediction equals the fixed point, by offset and by iteration.

    Args:
        model: the causal LM to diagnose (any model: the one that collected the trajectories or a trained one).
        trajectories: rows with ``prefix_ids``, ``states`` and ``output_ids`` (as ``collect_trajectories`` writes).
            The fixed point of a row is its ``output_ids``: diagnose a model on trajectories it collected itself to
            see what its own decoding meets.
        max_states_per_forward: states of one block scored in one batched forward.

    Returns:
        A JSON-ready dict: ``block_size``, ``num_blocks``, ``num_states``; ``by_offset[group]`` a list over offsets
        t = 1 … n−1 (the token predicted; offset 0 is given by the previous block) and ``by_iteration[group]`` a
        list over recorded states k = 0, 1, … (the final state, the fixed point itself, is left out), each entry
        ``{"agree": fraction or None, "count": positions}``. Groups: ``all``; ``clean_prefix``, where
        ``state[:t]`` equals the fixed point (the prediction is ordinary next-token prediction); ``noisy_prefix``,
        where a draft token before t is wrong (the prediction must see past it).
    """
    rows = list(trajectories)
    if not rows:
        raise ValueError("fixed_point_agreement needs at least one trajectory row")
    for column in ("prefix_ids", "states", "output_ids"):
        if column not in rows[0]:
            raise ValueError(f"trajectories need a {column!r} column (as written by collect_trajectories)")
    block_size = len(rows[0]["output_ids"])
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tallies: dict[tuple[str, str, int], list[int]] = {}
    try:
        for row in rows:
            drafts = torch.tensor(row["states"][:-1], dtype=torch.long)  # the fixed point itself is not a draft
            if len(drafts) == 0:
                continue
            fixed_point = torch.tensor(row["output_ids"], dtype=torch.long)
            for start in range(0, len(drafts), max_states_per_forward):
                chunk = drafts[start : start + max_states_per_forward]
                predictions = _block_predictions(model, row["prefix_ids"], chunk, device)
                _tally(tallies, chunk, predictions, fixed_point, first_iteration=start)
    finally:
        model.train(was_training)
    max_iteration = max((key[2] for key in tallies if key[1] == "iteration"), default=-1)
    return {
        "block_size": block_size,
        "num_blocks": len(rows),
        "num_states": sum(len(row["states"]) - 1 for row in rows),
        "by_offset": {group: _series(tallies, group, "offset", range(1, block_size)) for group in GROUPS},
        "by_iteration": {group: _series(tallies, group, "iteration", range(max_iteration + 1)) for group in GROUPS},
    }


def _block_predictions(model: Any, prefix: Sequence[int], drafts: torch.Tensor, device: Any) -> torch.Tensor:
    """Greedy predictions of offsets 1 … n−1 of each draft, from ``prefix ‖ draft`` (shape: states × (n − 1))."""
    block_size = drafts.shape[1]
    prefix_ids = torch.tensor(prefix, dtype=torch.long).expand(len(drafts), -1)
    input_ids = torch.cat([prefix_ids, drafts], dim=1).to(device)
    logits = model(input_ids=input_ids, logits_to_keep=block_size, use_cache=False).logits
    return logits[:, : block_size - 1].argmax(dim=-1).cpu()


def _tally(tallies, drafts, predictions, fixed_point, *, first_iteration: int) -> None:
    agree = predictions == fixed_point[1:]  # (states, n-1): prediction of offset t+1 from draft[:t+1]
    draft_right = drafts == fixed_point
    # the prediction of offset t reads draft[0 … t-1]; its prefix is clean when all of those are right
    clean_prefix = draft_right.long().cumprod(dim=1).bool()[:, :-1]
    groups = {"all": torch.ones_like(agree), "clean_prefix": clean_prefix, "noisy_prefix": ~clean_prefix}
    for group, selected in groups.items():
        for offset in range(agree.shape[1]):
            _add(tallies, (group, "offset", offset + 1), agree[:, offset], selected[:, offset])
        for index in range(agree.shape[0]):
            _add(tallies, (group, "iteration", first_iteration + index), agree[index], selected[index])


def _add(tallies, key, agree: torch.Tensor, selected: torch.Tensor) -> None:
    entry = tallies.setdefault(key, [0, 0])
    entry[0] += int((agree & selected).sum())
    entry[1] += int(selected.sum())


def _series(tallies, group: str, axis: str, indices: range) -> list[dict[str, Any]]:
    series = []
    for index in indices:
        agreeing, count = tallies.get((group, axis, index), (0, 0))
        series.append({"agree": round(agreeing / count, 4) if count else None, "count": count})
    return series


def overall_agreement(series: Sequence[Mapping[str, Any]]) -> float | None:
    """The count-weighted agreement over a whole series (e.g. every offset's ``noisy_prefix`` entry).

    >>> overall_agreement([{"agree": 1.0, "count": 1}, {"agree": 0.0, "count": 3}, {"agree": None, "count": 0}])
    0.25
    """
    count = sum(entry["count"] for entry in series)
    if not count:
        return None
    agreeing = sum((entry["agree"] or 0.0) * entry["count"] for entry in series)
    return round(agreeing / count, 4) if math.isfinite(agreeing) else None


def agreement_markdown(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table per axis comparing named reports (e.g. ``{"base": ..., "trained": ...}``)."""
    lines = []
    for axis, label in (("by_offset", "offset t"), ("by_iteration", "iteration k")):
        length = max(len(report[axis]["all"]) for report in reports.values())
        first = 1 if axis == "by_offset" else 0
        header = [label, *(f"{name} {group}" for name in reports for group in GROUPS)]
        lines += [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
        for index in range(length):
            cells = [str(index + first)]
            for report in reports.values():
                for group in GROUPS:
                    series = report[axis][group]
                    entry = series[index] if index < len(series) else {"agree": None, "count": 0}
                    cells.append("–" if entry["agree"] is None else f"{entry['agree']:.2f} ({entry['count']})")
            lines.append(f"| {' | '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)


def plot_agreement(
    reports: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    *,
    losses: Sequence[Mapping[str, float]] | None = None,
    title: str = "Draft predictions equal to the fixed point",
) -> Path:
    """PNG: agreement by offset and by iteration for each named report, and the training losses when given
    (``trainer.state.log_history`` entries with ``step``, ``ar_loss``, ``consistency_loss``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if losses else 2
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    for name, report in reports.items():
        for axis, key, first in ((axes[0], "by_offset", 1), (axes[1], "by_iteration", 0)):
            for group, style in (("clean_prefix", ":"), ("noisy_prefix", "-")):
                values = [entry["agree"] for entry in report[key][group]]
                xs = [index + first for index, value in enumerate(values) if value is not None]
                ys = [value for value in values if value is not None]
                axis.plot(xs, ys, style, marker=".", label=f"{name}, {group}")
    axes[0].set(xlabel="offset t in the block", ylabel="fraction = fixed point", title="by position in the block")
    axes[1].set(xlabel="Jacobi iteration k (recorded state)", title="by iteration")
    for axis in axes[:2]:
        axis.set_ylim(-0.02, 1.02)
        axis.legend(fontsize=7)
    if losses:
        entries = [entry for entry in losses if "ar_loss" in entry]
        steps = [entry["step"] for entry in entries]
        for key in ("ar_loss", "consistency_loss"):
            axes[2].plot(steps, [entry[key] for entry in entries], marker=".", label=key)
        axes[2].set(xlabel="optimizer step", ylabel="loss", title="training losses", yscale="log")
        axes[2].legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
