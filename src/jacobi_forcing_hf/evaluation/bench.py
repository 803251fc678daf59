"""Speed benchmark: every decoding method in one process, on the same prompts, with the same definitions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .hardware import hardware_summary
from .prompting import as_prompt_items, encode_prompt, prompts_fingerprint, resolve_chat
from .report import RunResult
from .results_store import ResultsStore
from .speed import (
    BASELINE_METHOD,
    DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
    JacobiKnobs,
    MethodSettings,
    check_methods,
    measure_methods,
    model_label,
    model_placement,
    prepare_model,
    summarize,
    warm_up,
)

DEFAULT_BENCH_METHODS: tuple[str, ...] = ("greedy", "jacobi", "jacobi_mr", "prompt_lookup")


def check_run_sizes(max_new_tokens: int, repeats: int) -> None:
    """Raise ``EvaluationInputError`` for a token budget or repeat count below 1."""
    from .errors import EvaluationInputError

    if max_new_tokens < 1:
        raise EvaluationInputError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if repeats < 1:
        raise EvaluationInputError(f"repeats must be >= 1, got {repeats}.")


def benchmark_speed(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Any],
    *,
    methods: Sequence[str] = DEFAULT_BENCH_METHODS,
    max_new_tokens: int = 128,
    repeats: int = 3,
    warmup: bool = True,
    knobs: JacobiKnobs | None = None,
    prompt_lookup_num_tokens: int = DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
    draft_model: Any = None,
    use_chat_template: bool | None = None,
    model_name: str | None = None,
    draft_model_name: str | None = None,
    prompt_source: str | None = None,
    results_file: str | os.PathLike | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> RunResult:
    """Measure TPF, tokens/s and speed-up over greedy for each method on the same prompts (batch 1).

    Greedy decoding always runs first, as the baseline of the speed-up and of the "same tokens as greedy"
    check. For each prompt the methods run interleaved, ``repeats`` rounds; the time of a prompt is the median
    over its repeats. With ``results_file``, each prompt's results are appended as it finishes and a re-run
    with the same arguments skips the finished prompts.

    Args:
        prompts: texts, ``PromptItem`` objects or task ``Problem`` objects (user messages for chat models).
        methods: names from ``speed.METHODS``; ``assisted`` needs ``draft_model``.
        knobs: Jacobi knobs (``None`` fields: the model's generation config, else the engine defaults).
        use_chat_template: ``None`` = when the tokenizer has one.

    Raises:
        EvaluationInputError: bad methods, knobs, sizes or prompts, or a results file made with other
            arguments; all checked before any generation.

    Example:
        >>> prompts = ["Write a haiku.", "Name three primes."]
        >>> result = jf.benchmark_speed(model, tokenizer, prompts, max_new_tokens=32)  # doctest: +SKIP
        >>> [(row["method"], round(row["tpf"], 2)) for row in result.summary]  # doctest: +SKIP
    """
    check_run_sizes(max_new_tokens, repeats)
    methods = check_methods([BASELINE_METHOD, *methods], draft_model=draft_model)
    items = as_prompt_items(prompts)
    chat = resolve_chat(tokenizer, use_chat_template)
    settings = MethodSettings.for_model(model, max_new_tokens, knobs, prompt_lookup_num_tokens, draft_model)
    config = {
        "kind": "bench",
        "model": model_name or model_label(model),
        "draft_model": draft_model_name if draft_model is not None else None,
        "methods": methods,
        "prompt_source": prompt_source,
        "prompts": len(items),
        "prompts_sha256": prompts_fingerprint(items),
        "chat_template": chat,
        "repeats": repeats,
        "warmup": warmup,
        **model_placement(model),
        **settings.describe(),
    }
    store = ResultsStore(results_file, config, fresh=fresh)
    prepare_model(model, methods)
    pending = [item for item in items if item.prompt_id not in store]
    if pending and warmup:
        warm_up(model, encode_prompt(tokenizer, pending[0].text, chat=chat), methods, settings)
    from tqdm.auto import tqdm

    for item in tqdm(pending, desc="bench", unit="prompt", disable=not progress):
        inputs = encode_prompt(tokenizer, item.text, chat=chat)
        measurements = measure_methods(model, inputs, methods, settings, repeats)
        greedy_tokens = measurements[BASELINE_METHOD].token_ids
        store.append(
            item.prompt_id,
            {
                "prompt_id": item.prompt_id,
                "prompt_tokens": int(inputs["input_ids"].shape[1]),
                "methods": {method: measurement.record(greedy_tokens) for method, measurement in measurements.items()},
            },
        )
    records = [store.get(item.prompt_id) for item in items]
    return RunResult("bench", config, hardware_summary(model.device, model.dtype), _summary(records, methods), records)


def _summary(records: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    baseline = summarize([record["methods"][BASELINE_METHOD] for record in records])
    return [
        {
            "method": method,
            **summarize([record["methods"][method] for record in records], baseline["tokens_per_s"]),
        }
        for method in methods
    ]
