"""PNG plots of a run (matplotlib, no display needed): speed-up and TPF bars per method, TPF and speed-up
heatmaps over a sweep grid, score bars per task. Each figure carries the command that produced it in its
footer and in the PNG's ``Description`` metadata."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FOOTER_WIDTH = 150


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path, command: str | None) -> Path:
    if command:
        figure.text(
            0.01,
            0.005,
            textwrap.fill(command, _FOOTER_WIDTH, break_on_hyphens=False),
            fontsize=6,
            va="bottom",
            family="monospace",
        )
    figure.savefig(path, dpi=120, metadata={"Description": command or ""})
    _pyplot().close(figure)
    return path


def _bars(axis, labels: list[str], values: list[float], title: str, value_format: str, baseline: float | None):
    positions = range(len(labels))
    bars = axis.bar(positions, values, color="tab:blue")
    axis.set_xticks(list(positions), labels, rotation=20, ha="right")
    axis.set_title(title)
    if baseline is not None:
        axis.axhline(baseline, color="grey", linestyle="--", linewidth=1)
    for bar, value in zip(bars, values):
        axis.annotate(
            value_format.format(value),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )


def plot_bench(result, folder: Path, name: str, command: str | None = None) -> list[Path]:
    """``<name>.png``: speed-up vs greedy and TPF, one bar per method."""
    plt = _pyplot()
    methods = [row["method"] for row in result.summary]
    figure, (speed_axis, tpf_axis) = plt.subplots(1, 2, figsize=(10, 4.2))
    _bars(
        speed_axis,
        methods,
        [row["speedup"] or 0.0 for row in result.summary],
        "speed-up vs greedy (tokens/s)",
        "{:.2f}×",
        1.0,
    )
    _bars(tpf_axis, methods, [row["tpf"] for row in result.summary], "tokens per forward (TPF)", "{:.2f}", 1.0)
    figure.suptitle(
        f"{result.config.get('model')}: {result.summary[0]['prompts']} prompts, "
        f"{result.config.get('max_new_tokens')} new tokens max"
    )
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return [_save(figure, folder / f"{name}.png", command)]


def plot_eval(result, folder: Path, name: str, command: str | None = None) -> list[Path]:
    """``<name>.png``: score (pass@1 / accuracy) and TPF, one bar per task and method."""
    plt = _pyplot()
    labels = [f"{row['task']}\n{row['method']}" for row in result.summary]
    figure, (score_axis, tpf_axis) = plt.subplots(1, 2, figsize=(max(8, 1.4 * len(labels) + 4), 4.2))
    _bars(score_axis, labels, [row["score"] for row in result.summary], "pass@1 / accuracy", "{:.3f}", None)
    score_axis.set_ylim(0, 1.05)
    _bars(tpf_axis, labels, [row["tpf"] for row in result.summary], "tokens per forward (TPF)", "{:.2f}", 1.0)
    figure.suptitle(f"{result.config.get('model')}: quality and TPF")
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return [_save(figure, folder / f"{name}.png", command)]


_HEATMAP_AXES = ("block_size", "pool_size")  # every other knob's values get panels of their own


def _sweep_panels(summary: list[dict[str, Any]]):
    """Grid cells grouped into panels (one per combination of the knobs other than block_size and pool_size, each
    a dict knob -> value), each a block_size × pool_size table."""
    from .speed import KNOB_NAMES, stored_knob

    cells = [row for row in summary if row.get("cell") is not None]
    axes_values = {
        knob: sorted({stored_knob(row["cell"], knob) for row in cells}, key=lambda value: (value is not None, value))
        for knob in KNOB_NAMES
    }
    panel_knobs = [knob for knob in KNOB_NAMES if knob not in _HEATMAP_AXES]
    panels = [
        dict(zip(panel_knobs, values)) for values in itertools.product(*(axes_values[knob] for knob in panel_knobs))
    ]
    by_knobs = {tuple(stored_knob(row["cell"], knob) for knob in KNOB_NAMES): row for row in cells}
    return axes_values, panels, by_knobs


def _panel_title(panel: dict[str, Any]) -> str:
    """``num_blocks=2, r=0.85``, then a line with the late knobs that are set (``alt=4, copy=32``)."""
    from .speed import LATE_KNOBS, is_unstored_default, knob_value_label

    title = f"num_blocks={panel['num_blocks']}, r={panel['activation_ratio']}"
    late = [
        f"{label}={knob_value_label(name, panel[name])}"
        for name, label in LATE_KNOBS.items()
        if not is_unstored_default(name, panel[name])
    ]
    return "\n".join([title, ", ".join(late)]) if late else title


def _grid_cell(panel: dict[str, Any], block_size: int, pool_size: int) -> tuple:
    """The knob values (in ``KNOB_NAMES`` order) of one heatmap cell of ``panel``."""
    from .speed import KNOB_NAMES

    knobs = {**panel, "block_size": block_size, "pool_size": pool_size}
    return tuple(knobs[name] for name in KNOB_NAMES)


def plot_sweep(result, folder: Path, name: str, command: str | None = None) -> list[Path]:
    """``<name>.png``: TPF heatmaps; ``<name>_speedup.png``: speed-up heatmaps. One panel per combination of
    num_blocks, activation_ratio, draft_alternatives and copy_length; block_size down, pool_size across."""
    axes_values, panels, by_knobs = _sweep_panels(result.summary)
    paths = []
    for metric, suffix, title in (("tpf", "", "TPF"), ("speedup", "_speedup", "speed-up vs greedy")):
        paths.append(
            _heatmaps(result, axes_values, panels, by_knobs, metric, title, folder / f"{name}{suffix}.png", command)
        )
    return paths


def _heatmaps(result, axes_values, panels, by_knobs, metric, title, path, command) -> Path:
    plt = _pyplot()
    block_sizes, pool_sizes = axes_values["block_size"], axes_values["pool_size"]
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns + 1, 2.8 * rows + 1.2), squeeze=False)
    values = [
        [[_cell_value(by_knobs.get(_grid_cell(panel, n, pool)), metric) for pool in pool_sizes] for n in block_sizes]
        for panel in panels
    ]
    finite = [value for panel in values for row in panel for value in row if value == value]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    image = None
    for axis, panel, grid in zip(axes.flat, panels, values):
        image = axis.imshow(grid, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        axis.set_xticks(range(len(pool_sizes)), pool_sizes)
        axis.set_yticks(range(len(block_sizes)), block_sizes)
        axis.set_xlabel("pool_size")
        axis.set_ylabel("block_size")
        axis.set_title(_panel_title(panel), fontsize=9)
        for (row, column), value in _enumerate_grid(grid):
            if value == value:
                bright = high > low and (value - low) / (high - low) > 0.6  # viridis is light at the top
                axis.text(
                    column,
                    row,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if bright else "white",
                )
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.subplots_adjust(left=0.08, right=0.86, top=0.8, bottom=0.2 if command else 0.12, wspace=0.35)
    figure.colorbar(image, cax=figure.add_axes((0.89, 0.25, 0.02, 0.55)))
    figure.suptitle(f"{title} over the {result.config.get('method')} grid: {result.config.get('model')}")
    return _save(figure, path, command)


def _cell_value(row: dict[str, Any] | None, metric: str) -> float:
    if row is None or row.get(metric) is None:
        return float("nan")
    return float(row[metric])


def _enumerate_grid(grid):
    for row_index, row in enumerate(grid):
        for column_index, value in enumerate(row):
            yield (row_index, column_index), value


PLOTTERS: dict[str, Callable[..., list[Path]]] = {"bench": plot_bench, "sweep": plot_sweep, "eval": plot_eval}
