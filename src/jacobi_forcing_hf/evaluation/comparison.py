"""Base model vs Jacobi Forcing model: one table and two figures from the pipeline's evaluation summaries.

The table puts, for every decoding method, the base and the trained model's pass@1 and TPF side by side with the
speed-up over greedy decoding that each model's own benchmark measured (greedy and the Jacobi methods timed in the
same run, so the ratio holds even on a shared machine). The figures are pass@1 against TPF (the quality cost of the
speed, if any) and TPF against training steps (from ``TPFCallback`` entries in the trainer's log history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .plots import _pyplot, _save


def compare_models(evaluations: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, method) from ``{model name: {"eval": [...], "bench": [...]}}`` summaries.

    ``eval`` rows carry ``method``, ``score`` (pass@1), ``problems``, ``tpf``, ``matches_greedy`` and
    ``prompt_echoes`` (completions that copy their prompt, whose TPF is free for n-gram recycling); ``bench`` rows
    (optional) carry ``method``, ``tokens_per_s`` and ``speedup`` over that model's greedy decoding.

    >>> rows = compare_models({"base": {"eval": [{"method": "greedy", "score": 0.1, "problems": 10, "tpf": 1.0}]}})
    >>> rows[0]["model"], rows[0]["pass@1"], rows[0]["speedup"]
    ('base', 0.1, None)
    """
    rows = []
    for model, summary in evaluations.items():
        speed = {row["method"]: row for row in summary.get("bench", [])}
        for row in summary["eval"]:
            bench = speed.get(row["method"], {})
            rows.append(
                {
                    "model": model,
                    "method": row["method"],
                    "problems": row["problems"],
                    "pass@1": row["score"],
                    "tpf": row["tpf"],
                    "matches_greedy": row.get("matches_greedy"),
                    "prompt_echoes": row.get("prompt_echoes"),
                    "tokens_per_s": bench.get("tokens_per_s"),
                    "speedup": bench.get("speedup"),
                }
            )
    return rows


def tpf_without_echoes(
    records: Mapping[str, Sequence[Mapping[str, Any]]], prompts: Mapping[str, str]
) -> dict[str, Any]:
    """TPF of every model and method over the problems that no model's completion echoes its prompt in.

    Rejection recycling predicts copied prompt text for free, so a model that echoes its prompt more often gains
    TPF without decoding faster where it writes new text. Restricting every model to the same unechoed problems
    compares what is left. ``records`` maps a model name to its evaluation records (as ``jacobi-forcing eval``
    stores them); ``prompts`` maps each problem id to the prompt it was asked. TPF is pooled as in ``summarize``.

    >>> record = {"problem_id": "p1", "method": "jacobi", "completion": "x", "new_tokens": 6, "forwards": 3,
    ...           "seconds": 1.0, "stopped_at_eos": True}
    >>> docstring = "a docstring that the model copies back " * 4
    >>> echo = {**record, "problem_id": "p2", "completion": docstring}
    >>> tpf_without_echoes({"m": [record, echo]}, {"p1": "a prompt", "p2": docstring}) == {
    ...     "problems": ["p1"], "tpf": {"m": {"jacobi": 2.0}}}
    True
    """
    from .quality import echoes_prompt
    from .speed import summarize

    echoed = {
        record["problem_id"]
        for model_records in records.values()
        for record in model_records
        if echoes_prompt(prompts[record["problem_id"]], record["completion"])
    }
    kept = set(prompts) - echoed
    tpf: dict[str, dict[str, float]] = {}
    for model, model_records in records.items():
        by_method: dict[str, list[Mapping[str, Any]]] = {}
        for record in model_records:
            if record["problem_id"] in kept:
                by_method.setdefault(record["method"], []).append(record)
        tpf[model] = {method: summarize(group)["tpf"] for method, group in by_method.items()}
    return {"problems": sorted(kept), "tpf": tpf}


def comparison_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`compare_models` rows."""

    def cell(value: Any, spec: str) -> str:
        return "–" if value is None else format(value, spec)

    lines = [
        "| model | method | problems | pass@1 | TPF | tokens/s | speed-up vs its greedy (×) | outputs = greedy | "
        "echo the prompt |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        matches = "–" if row["matches_greedy"] is None else f"{row['matches_greedy']}/{row['problems']}"
        lines.append(
            f"| {row['model']} | {row['method']} | {row['problems']} | {cell(row['pass@1'], '.3f')} | "
            f"{cell(row['tpf'], '.2f')} | {cell(row['tokens_per_s'], '.1f')} | {cell(row['speedup'], '.2f')} | "
            f"{matches} | {cell(row['prompt_echoes'], 'd')} |"
        )
    return "\n".join(lines) + "\n"


def plot_quality_vs_tpf(rows: Sequence[Mapping[str, Any]], path: str | Path, command: str | None = None) -> Path:
    """PNG: pass@1 against TPF, one marker per (model, method), the methods of one model joined by a line."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.5))
    for model in dict.fromkeys(row["model"] for row in rows):
        points = sorted((row["tpf"], row["pass@1"], row["method"]) for row in rows if row["model"] == model)
        axis.plot([tpf for tpf, _, _ in points], [score for _, score, _ in points], marker="o", label=model)
        for tpf, score, method in points:
            axis.annotate(method, (tpf, score), textcoords="offset points", xytext=(4, 4), fontsize=7)
    axis.set(xlabel="tokens per forward (TPF)", ylabel="pass@1", title="Quality against tokens per forward")
    axis.legend()
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(figure, Path(path), command)


def tpf_curve(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """``(step, tpf)`` pairs of the log-history entries that ``TPFCallback`` wrote, in step order.

    >>> tpf_curve([{"step": 8, "tpf": 1.2}, {"step": 8, "loss": 3.0}, {"step": 0, "tpf": 1.0}])
    [(0, 1.0), (8, 1.2)]
    """
    return sorted((int(entry["step"]), float(entry["tpf"])) for entry in history if "tpf" in entry)


def round_boundaries(history: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """``(step, round)``: where each round after the first starts (the last logged step of the round before), for
    log histories whose entries carry the pipeline's ``round`` key.

    >>> round_boundaries([{"step": 0, "round": 1}, {"step": 32, "round": 1}, {"step": 40, "round": 2}])
    [(32, 2)]
    """
    last_step: dict[int, int] = {}
    for entry in history:
        if "round" in entry and "step" in entry:
            last_step[entry["round"]] = max(last_step.get(entry["round"], 0), int(entry["step"]))
    return [(last_step[index - 1], index) for index in sorted(last_step) if index - 1 in last_step]


def plot_tpf_curve(history: Sequence[Mapping[str, Any]], path: str | Path, command: str | None = None) -> Path | None:
    """PNG: greedy-Jacobi TPF on held-out prompts against optimizer steps, with a dashed line where each round of
    training after the first starts; ``None`` when no TPF was logged."""
    curve = tpf_curve(history)
    if not curve:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot([step for step, _ in curve], [tpf for _, tpf in curve], marker="o")
    for step, index in round_boundaries(history):
        axis.axvline(step, color="grey", linestyle="--", linewidth=1)
        axis.annotate(
            f"round {index}",
            (step, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )
    axis.set(xlabel="optimizer step", ylabel="TPF (greedy Jacobi, held-out prompts)", title="TPF while training")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(figure, Path(path), command)
