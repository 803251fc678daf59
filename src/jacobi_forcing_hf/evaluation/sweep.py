"""A grid over the Jacobi knobs (block_size × num_blocks × pool_size × activation_ratio × draft_alternatives ×
copy_length) with TPF and tokens/s per cell, against greedy decoding measured on the same prompts in the same
run."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .bench import check_run_sizes
from .errors import EvaluationInputError
from .hardware import hardware_summary
from .prompting import as_prompt_items, encode_prompt, prompts_fingerprint, resolve_chat
from .report import RunResult
from .results_store import ResultsStore
from .speed import (
    BASELINE_METHOD,
    JACOBI_METHODS,
    KNOB_NAMES,
    LATE_KNOBS,
    JacobiKnobs,
    MethodSettings,
    check_knob,
    check_methods,
    is_unstored_default,
    knob_value_label,
    measure_methods,
    model_label,
    model_placement,
    prepare_model,
    summarize,
    warm_up,
)

_MULTIBLOCK_KNOBS = ("num_blocks", "pool_size", "activation_ratio", "draft_alternatives", "copy_length", "ngram_table")


@dataclass(frozen=True)
class SweepGrid:
    """The values of each knob; the grid is their Cartesian product.

    Example:
        >>> grid = SweepGrid(block_size=(8, 16), num_blocks=(1, 2), pool_size=(0, 4), activation_ratio=(0.9,))
        >>> len(grid.cells())
        8
        >>> SweepGrid(block_size=(0,))
        Traceback (most recent call last):
        ...
        jacobi_forcing_hf.evaluation.errors.EvaluationInputError: block_size must be an integer >= 1, got 0.
    """

    block_size: tuple[int, ...] = (16, 32, 64)
    num_blocks: tuple[int, ...] = (1, 2)
    pool_size: tuple[int, ...] = (0, 4)
    activation_ratio: tuple[float, ...] = (0.85,)
    draft_alternatives: tuple[int, ...] = (0,)
    copy_length: tuple[int | None, ...] = (None,)  # None: the model's generation config, else the candidate length
    ngram_table: tuple[str | None, ...] = (None,)  # None: the model's generation config, else no table

    def __post_init__(self) -> None:
        for name in KNOB_NAMES:
            values = tuple(getattr(self, name))
            if not values:
                raise EvaluationInputError(f"the sweep grid needs at least one {name} value.")
            if len(set(values)) != len(values):
                raise EvaluationInputError(f"{name} values repeat in the sweep grid: {list(values)}.")
            for value in values:
                check_knob(name, value)
            object.__setattr__(self, name, values)

    def cells(self) -> list[JacobiKnobs]:
        """Every combination, block_size varying slowest."""
        return [JacobiKnobs(*values) for values in itertools.product(*(getattr(self, name) for name in KNOB_NAMES))]

    def as_dict(self) -> dict[str, list]:
        """The values of each knob; a late knob only when swept (older results files still resume)."""
        values = {name: list(getattr(self, name)) for name in KNOB_NAMES}
        return {
            name: knob_values
            for name, knob_values in values.items()
            if not (len(knob_values) == 1 and is_unstored_default(name, knob_values[0]))
        }


def cell_key(knobs: JacobiKnobs) -> str:
    """A readable id of a grid cell, e.g. ``n16_K2_pool4_r0.85`` (``_alt2``, ``_copy32`` appended for late knobs
    that are set)."""
    key = f"n{knobs.block_size}_K{knobs.num_blocks}_pool{knobs.pool_size}_r{knobs.activation_ratio:g}"
    stored = knobs.as_dict()
    return key + "".join(
        f"_{label}{knob_value_label(name, stored[name])}" for name, label in LATE_KNOBS.items() if name in stored
    )


def check_sweep_method(method: str, grid: SweepGrid) -> None:
    """Raise ``EvaluationInputError`` unless ``method`` is a Jacobi method that uses every swept knob."""
    if method not in JACOBI_METHODS:
        raise EvaluationInputError(f"the sweep method must be one of {', '.join(JACOBI_METHODS)}, got {method!r}.")
    if method == "jacobi" and any(len(getattr(grid, name)) > 1 for name in _MULTIBLOCK_KNOBS):
        raise EvaluationInputError(
            "method 'jacobi' keeps one block and no recycling, so it ignores "
            f"{', '.join(_MULTIBLOCK_KNOBS)}; give one value for each, or sweep method 'jacobi_mr'."
        )


def run_sweep(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    grid: SweepGrid,
    *,
    method: str = "jacobi_mr",
    max_new_tokens: int = 128,
    repeats: int = 1,
    warmup: bool = True,
    use_chat_template: bool | None = None,
    model_name: str | None = None,
    prompt_source: str | None = None,
    results_file: str | os.PathLike | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> RunResult:
    """Measure ``method`` at every cell of ``grid`` (and greedy once) on the same prompts (batch 1).

    Per prompt, greedy runs first and then each cell, ``repeats`` times, the median time kept. With
    ``results_file``, each (prompt, cell) result is appended as it finishes and a re-run with the same
    arguments continues where it stopped.

    Raises:
        EvaluationInputError: a method other than jacobi/jacobi_mr, grid values out of range (checked when the
            ``SweepGrid`` is built), bad sizes, or a results file made with other arguments; all before
            generating.

    Example:
        >>> grid = jf.SweepGrid(block_size=(16, 32), num_blocks=(1, 2), pool_size=(0, 4))  # doctest: +SKIP
        >>> result = jf.run_sweep(model, tokenizer, ["Write a haiku."], grid)  # doctest: +SKIP
    """
    check_sweep_method(method, grid)
    check_run_sizes(max_new_tokens, repeats)
    check_methods([BASELINE_METHOD, method])
    items = as_prompt_items(prompts)
    chat = resolve_chat(tokenizer, use_chat_template)
    cells = grid.cells()
    config = {
        "kind": "sweep",
        "model": model_name or model_label(model),
        "method": method,
        "grid": grid.as_dict(),
        "prompt_source": prompt_source,
        "prompts": len(items),
        "prompts_sha256": prompts_fingerprint(items),
        "chat_template": chat,
        "max_new_tokens": max_new_tokens,
        "repeats": repeats,
        "warmup": warmup,
        **model_placement(model),
    }
    store = ResultsStore(results_file, config, fresh=fresh)
    prepare_model(model, [method])
    baseline_settings = MethodSettings(max_new_tokens)
    units = [(item, knobs) for item in items for knobs in [None, *cells]]  # per prompt: greedy, then every cell
    pending = [(item, knobs) for item, knobs in units if _key(item.prompt_id, knobs) not in store]
    if pending and warmup:
        first_inputs = encode_prompt(tokenizer, pending[0][0].text, chat=chat)
        warm_up(model, first_inputs, [BASELINE_METHOD], baseline_settings)
        warm_up(model, first_inputs, [method], MethodSettings(max_new_tokens, cells[0]))
    from tqdm.auto import tqdm

    for item, knobs in tqdm(pending, desc="sweep", unit="run", disable=not progress):
        inputs = encode_prompt(tokenizer, item.text, chat=chat)
        run_method = BASELINE_METHOD if knobs is None else method
        settings = baseline_settings if knobs is None else MethodSettings(max_new_tokens, knobs)
        measurement = measure_methods(model, inputs, [run_method], settings, repeats)[run_method]
        greedy = store.get(_key(item.prompt_id, None))
        reference = None if greedy is None else greedy["token_ids"]
        record = {"prompt_id": item.prompt_id, "cell": knobs.as_dict() if knobs else None}
        store.append(_key(item.prompt_id, knobs), {**record, **measurement.record(reference)})
    records = [store.get(_key(item.prompt_id, knobs)) for item, knobs in units]
    summary = _summary(items, cells, store, method)
    return RunResult("sweep", config, hardware_summary(model.device, model.dtype), summary, records)


def _key(prompt_id: str, knobs: JacobiKnobs | None) -> str:
    return f"{prompt_id}|{BASELINE_METHOD if knobs is None else cell_key(knobs)}"


def _summary(items, cells, store: ResultsStore, method: str) -> list[dict[str, Any]]:
    baseline = summarize([store.get(_key(item.prompt_id, None)) for item in items])
    rows = [{"method": BASELINE_METHOD, "cell": None, **baseline, "speedup": 1.0}]
    for knobs in cells:
        cell_records = [store.get(_key(item.prompt_id, knobs)) for item in items]
        rows.append({"method": method, "cell": knobs.as_dict(), **summarize(cell_records, baseline["tokens_per_s"])})
    return rows
