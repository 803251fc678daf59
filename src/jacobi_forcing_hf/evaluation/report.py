"""Results of a run as JSON (for machines) and Markdown (for docs), each stamped with the command that made
it."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hardware import describe_hardware

DEFINITIONS = (
    "Definitions (the same for every method): **new tokens** = generated tokens up to and including the "
    "first EOS; **forwards** = calls of the target model's forward during `generate`, the prefill included "
    "(a draft model's forwards are not counted); **TPF** = new tokens / forwards over all prompts "
    "(greedy = 1.00); **tokens/s** = new tokens / wall time of the whole `generate` calls, prefill included "
    "(per prompt the median over repeats, summed over prompts); **speed-up** = tokens/s / greedy tokens/s "
    "measured in the same run; **same as greedy** = prompts whose tokens equal greedy decoding's."
)


@dataclass
class RunResult:
    """What a bench, sweep or eval run produced.

    Attributes:
        kind: ``"bench"``, ``"sweep"`` or ``"eval"``.
        config: the settings that determine the results (also the resume key of the results file).
        hardware: :func:`~jacobi_forcing_hf.evaluation.hardware.hardware_summary` of the machine.
        summary: one row per method (bench), per grid cell (sweep) or per task and method (eval).
        records: the per-prompt / per-problem records.
        created: UTC time the result was assembled.
    """

    kind: str
    config: dict[str, Any]
    hardware: dict[str, Any]
    summary: list[dict[str, Any]]
    records: list[dict[str, Any]]
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self, command: str | None = None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "command": command,
            "created": self.created,
            "hardware": self.hardware,
            "config": self.config,
            "summary": self.summary,
            "records": self.records,
        }


def write_reports(result: RunResult, output_dir: str | Path, name: str, command: str | None = None) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and the PNG plot(s) into ``output_dir``; returns the paths."""
    from .plots import PLOTTERS

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{name}.json"
    json_path.write_text(json.dumps(result.to_dict(command), indent=2) + "\n", encoding="utf-8")
    markdown_path = folder / f"{name}.md"
    markdown_path.write_text(render_markdown(result, command), encoding="utf-8")
    return [json_path, markdown_path, *PLOTTERS[result.kind](result, folder, name, command)]


def render_markdown(result: RunResult, command: str | None = None) -> str:
    """The Markdown page of a result: title, command, hardware, settings, summary table, definitions."""
    title, table = _RENDERERS[result.kind](result)
    lines = [f"# {title}", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    lines += [
        f"Created {result.created} on: {describe_hardware(result.hardware)}.",
        "",
        "Settings: " + _settings_line(result.config),
        "",
        table,
        "",
        DEFINITIONS,
        "",
    ]
    return "\n".join(lines)


def _settings_line(config: dict[str, Any]) -> str:
    shown = {key: value for key, value in config.items() if key not in ("kind", "prompts_sha256")}
    return ", ".join(f"`{key}`={json.dumps(value)}" for key, value in shown.items())


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _speed_cells(row: dict[str, Any]) -> list[str]:
    cells = [str(row["new_tokens"]), str(row["forwards"]), f"{row['tpf']:.2f}", f"{row['tokens_per_s']:.1f}"]
    cells.append(_ratio(row.get("speedup")))
    matches = row.get("matches_greedy")
    cells.append("–" if matches is None else f"{matches}/{row['prompts']}")
    return cells


_SPEED_HEADER = ["new tokens", "forwards", "TPF", "tokens/s", "speed-up", "same as greedy"]


def _bench_markdown(result: RunResult) -> tuple[str, str]:
    rows = [[row["method"], str(row["prompts"]), *_speed_cells(row)] for row in result.summary]
    title = f"Speed benchmark: {result.config.get('model')}"
    return title, _table(["method", "prompts", *_SPEED_HEADER], rows)


def _sweep_markdown(result: RunResult) -> tuple[str, str]:
    from .speed import KNOB_NAMES, stored_knob

    cells = [row for row in result.summary if row.get("cell") is not None]
    swept = result.config.get("grid", {})
    knob_names = [name for name in KNOB_NAMES if name in swept]  # a grid leaves late knobs out unless swept
    best_tpf = max(cells, key=lambda row: row["tpf"], default=None)
    best_speed = max(cells, key=lambda row: row["tokens_per_s"], default=None)
    rows = []
    for row in result.summary:
        knobs = row.get("cell") or {}
        label = (
            row["method"]
            + (" (best TPF)" if row is best_tpf else "")
            + (" (best tokens/s)" if row is best_speed else "")
        )
        values = [str(stored_knob(knobs, name)) if knobs else "–" for name in knob_names]
        rows.append([label, *values, *_speed_cells(row)])
    title = f"Jacobi knob sweep ({result.config.get('method')}): {result.config.get('model')}"
    return title, _table(["run", *knob_names, *_SPEED_HEADER], rows)


def _eval_markdown(result: RunResult) -> tuple[str, str]:
    rows = [
        [
            row["task"],
            row["method"],
            row["metric"],
            f"{row['score']:.3f}",
            f"{row['correct']}/{row['problems']}",
            f"{row['tpf']:.2f}",
            f"{row['tokens_per_s']:.1f}",
            _ratio(row.get("speedup")),
            str(row.get("prompt_echoes", "–")),  # results written before the count existed have none
        ]
        for row in result.summary
    ]
    title = f"Quality evaluation: {result.config.get('model')}"
    header = [
        "task", "method", "metric", "score", "correct / problems", "TPF", "tokens/s", "speed-up", "echo the prompt"
    ]  # fmt: skip
    return title, _table(header, rows)


_RENDERERS: dict[str, Callable[[RunResult], tuple[str, str]]] = {
    "bench": _bench_markdown,
    "sweep": _sweep_markdown,
    "eval": _eval_markdown,
}
