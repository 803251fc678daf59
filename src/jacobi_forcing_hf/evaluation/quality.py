"""Quality evaluation: each task's problems, each decoding method, one greedy completion per problem, scored.

Besides pass@1 / accuracy, every record keeps the completion's new tokens, forwards and time, so the report
shows quality and speed side by side (single runs, no repeats: ``jacobi-forcing bench`` is the speed
measurement). The summary also counts completions that echo their prompt (:func:`echoes_prompt`): text copied
from the prompt is exactly what n-gram recycling and prompt lookup predict for free, so a model that learned to
echo shows a high TPF that says nothing about parallel decoding.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .bench import check_run_sizes
from .errors import EvaluationInputError
from .execution import DEFAULT_TIMEOUT_S
from .hardware import hardware_summary
from .prompting import PromptItem, encode_prompt, prompts_fingerprint, resolve_chat
from .report import RunResult
from .results_store import ResultsStore
from .speed import (
    BASELINE_METHOD,
    DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
    JacobiKnobs,
    MethodSettings,
    check_methods,
    combine_runs,
    generate_measured,
    model_label,
    model_placement,
    prepare_model,
    summarize,
    warm_up,
)
from .tasks import Problem, get_task


def load_task_problems(
    tasks: Sequence[str],
    *,
    chat: bool,
    data: Mapping[str, str] | None = None,
    data_config: Mapping[str, str] | None = None,
    split: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> dict[str, list[Problem]]:
    """Load the problems of each task (its default source unless ``data`` names one), checking names and
    columns.

    Raises:
        EvaluationInputError: an unknown task (in ``tasks`` or as a key of ``data``, ``data_config`` or
            ``split``), unloadable data, or missing columns.
    """
    task_objects = {name: get_task(name) for name in dict.fromkeys(tasks)}
    for option, mapping in (("data", data), ("data_config", data_config), ("split", split)):
        for name in mapping or {}:
            if name not in task_objects:
                get_task(name)  # an unknown name raises here, naming the known tasks
                raise EvaluationInputError(
                    f"{option} is given for task {name!r}, which is not among the tasks {list(tasks)}."
                )
    return {
        name: task.load_problems(
            (data or {}).get(name),
            config=(data_config or {}).get(name),
            split=(split or {}).get(name),
            limit=limit,
            chat=chat,
        )
        for name, task in task_objects.items()
    }


def evaluate_model(
    model: Any,
    tokenizer: Any,
    tasks: Sequence[str] = ("humaneval",),
    *,
    problems: Mapping[str, Sequence[Problem]] | None = None,
    methods: Sequence[str] = (BASELINE_METHOD,),
    max_new_tokens: int = 512,
    limit: int | None = None,
    data: Mapping[str, str] | None = None,
    knobs: JacobiKnobs | None = None,
    prompt_lookup_num_tokens: int = DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
    draft_model: Any = None,
    draft_model_name: str | None = None,
    use_chat_template: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    warmup: bool = True,
    model_name: str | None = None,
    results_file: str | os.PathLike | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> RunResult:
    """pass@1 (code tasks) or accuracy (math tasks) of greedy completions, for each task and decoding method.

    Generated code runs only in a sandboxed subprocess (``execution.run_python_sandboxed``) with
    ``timeout_s``. With ``results_file``, each (task, problem, method) result is appended as it finishes and a
    re-run with the same arguments skips the finished ones.

    Args:
        tasks: task names (``tasks.TASKS``); ignored when ``problems`` is given.
        problems: already loaded problems by task (see :func:`load_task_problems`), built for the same chat
            setting as ``use_chat_template`` resolves to.
        data: a local path or Hub id per task name, replacing the task's default source.

    Raises:
        EvaluationInputError: unknown task or method, data without the needed columns, bad sizes or knobs,
            or a results file made with other arguments; all before generating.

    Example:
        >>> data = {"gsm8k": "gsm8k.jsonl"}
        >>> result = jf.evaluate_model(model, tokenizer, ["gsm8k"], data=data)  # doctest: +SKIP
        >>> result.summary[0]["score"]  # doctest: +SKIP
    """
    check_run_sizes(max_new_tokens, 1)
    methods = check_methods(methods, draft_model=draft_model)
    methods.sort(key=lambda method: method != BASELINE_METHOD)  # greedy first: the reference of "same as greedy"
    chat = resolve_chat(tokenizer, use_chat_template)
    if problems is None:
        problems = load_task_problems(tasks, chat=chat, data=data, limit=limit)
    settings = MethodSettings.for_model(model, max_new_tokens, knobs, prompt_lookup_num_tokens, draft_model)
    config = {
        "kind": "eval",
        "model": model_name or model_label(model),
        "draft_model": draft_model_name if draft_model is not None else None,
        "methods": methods,
        "tasks": {
            name: {"problems": len(task_problems), "sha256": _problems_fingerprint(task_problems)}
            for name, task_problems in problems.items()
        },
        "chat_template": chat,
        "timeout_s": timeout_s,
        "warmup": warmup,
        **model_placement(model),
        **settings.describe(),
    }
    store = ResultsStore(results_file, config, fresh=fresh)
    prepare_model(model, methods)
    task_objects = {name: get_task(name, timeout_s=timeout_s) for name in problems}
    units = [(name, problem) for name, task_problems in problems.items() for problem in task_problems]
    pending = [
        (name, problem)
        for name, problem in units
        if any(_key(name, problem, method) not in store for method in methods)
    ]
    if pending and warmup:
        warm_up(model, encode_prompt(tokenizer, pending[0][1].prompt, chat=chat), methods, settings)
    from tqdm.auto import tqdm

    for name, problem in tqdm(pending, desc="eval", unit="problem", disable=not progress):
        inputs = encode_prompt(tokenizer, problem.prompt, chat=chat)
        greedy_tokens = None
        for method in methods:
            key = _key(name, problem, method)
            if key in store:
                greedy_tokens = store.get(key)["token_ids"] if method == BASELINE_METHOD else greedy_tokens
                continue
            measurement = combine_runs(method, [generate_measured(model, inputs, method, settings)])
            completion = tokenizer.decode(measurement.token_ids, skip_special_tokens=True)
            score = task_objects[name].score(problem, completion)
            reference = greedy_tokens if method != BASELINE_METHOD else None
            record = {
                "task": name,
                "problem_id": problem.problem_id,
                "method": method,
                "correct": score.correct,
                "extracted": score.extracted,
                "detail": score.detail,
                "completion": completion,
                "prompt_tokens": int(inputs["input_ids"].shape[1]),
                **measurement.record(reference),
            }
            store.append(key, record)
            if method == BASELINE_METHOD:
                greedy_tokens = measurement.token_ids
    records = [store.get(_key(name, problem, method)) for name, problem in units for method in methods]
    summary = _summary(problems, task_objects, methods, store)
    return RunResult("eval", config, hardware_summary(model.device, model.dtype), summary, records)


ECHO_MIN_CHARS = 100


def echoes_prompt(prompt: str, completion: str, min_chars: int = ECHO_MIN_CHARS) -> bool:
    """Whether ``completion`` repeats a run of at least ``min_chars`` consecutive characters of ``prompt``.

    >>> doc = "# Return the decimal part of a positive float, e.g. 3.5 -> 0.5, for any input value."
    >>> echoes_prompt("def f(x):\\n" + doc, "def f(x):\\n" + doc + "\\n    return x % 1", min_chars=60)
    True
    >>> echoes_prompt("def f(x):\\n" + doc, "def f(x):\\n    return x % 1", min_chars=60)
    False
    """
    if min_chars < 1:
        raise ValueError(f"min_chars must be >= 1, got {min_chars}")
    if len(prompt) < min_chars or len(completion) < min_chars:
        return False
    matcher = difflib.SequenceMatcher(None, prompt, completion, autojunk=False)
    return matcher.find_longest_match(0, len(prompt), 0, len(completion)).size >= min_chars


def _key(task: str, problem: Problem, method: str) -> str:
    return f"{task}|{problem.problem_id}|{method}"


def _problems_fingerprint(problems: Sequence[Problem]) -> str:
    return prompts_fingerprint([PromptItem(problem.problem_id, problem.prompt) for problem in problems])


def _summary(problems, task_objects, methods, store: ResultsStore) -> list[dict[str, Any]]:
    rows = []
    for name, task_problems in problems.items():
        by_method = {
            method: [store.get(_key(name, problem, method)) for problem in task_problems] for method in methods
        }
        baseline = summarize(by_method[BASELINE_METHOD]) if BASELINE_METHOD in by_method else None
        for method, records in by_method.items():
            correct = sum(bool(record["correct"]) for record in records)
            echoes = sum(
                echoes_prompt(problem.prompt, record["completion"]) for problem, record in zip(task_problems, records)
            )
            speed = summarize(records, baseline["tokens_per_s"] if baseline else None)
            rows.append(
                {
                    "task": name,
                    "method": method,
                    "metric": task_objects[name].metric,
                    "problems": len(records),
                    "correct": correct,
                    "score": correct / len(records),
                    "prompt_echoes": echoes,
                    **{key: value for key, value in speed.items() if key != "prompts"},
                }
            )
    return rows
