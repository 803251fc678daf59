"""Command-line pieces shared by ``jacobi-forcing eval``, ``bench`` and ``sweep`` (light imports only)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import EvaluationInputError
from .loading import DTYPES, EMBEDDED
from .speed import DEFAULT_PROMPT_LOOKUP_NUM_TOKENS, METHODS
from .tasks import TASKS

DEFAULT_OUTPUT_DIR = "docs/results"
CHAT_CHOICES = {"auto": None, "on": True, "off": False}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        default=EMBEDDED,
        help="'embedded' (SmolLM2-135M-Instruct), 'embedded-jacobi-forcing' (it with the shipped adapter), a local "
        "folder or a Hub id",
    )
    group.add_argument("--dtype", default="float32", choices=DTYPES, help="weights and compute dtype")
    group.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    group.add_argument(
        "--onednn-linear",
        action="store_true",
        help="compute linear layers with oneDNN (float32 on the CPU: faster for few-token queries)",
    )
    group.add_argument(
        "--chat-template",
        default="auto",
        choices=tuple(CHAT_CHOICES),
        help="send prompts through the tokenizer's chat template (auto: when it has one)",
    )


def add_method_arguments(
    parser: argparse.ArgumentParser, *, default_methods: tuple[str, ...], default_max_new_tokens: int
) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument(
        "--methods",
        nargs="+",
        default=list(default_methods),
        choices=METHODS,
        metavar="METHOD",
        help=f"decoding methods, from {', '.join(METHODS)} (default: %(default)s)",
    )
    group.add_argument(
        "--max-new-tokens",
        type=int,
        default=default_max_new_tokens,
        help="token budget per prompt (default: %(default)s)",
    )
    group.add_argument("--block-size", type=int, help="Jacobi block size n (default: model config, else 16)")
    group.add_argument("--num-blocks", type=int, help="blocks in flight K for jacobi_mr (default: config, else 2)")
    group.add_argument("--pool-size", type=int, help="recycled candidates per forward for jacobi_mr (default 4)")
    group.add_argument("--activation-ratio", type=float, help="spawn ratio r in (0, 1] for jacobi_mr (default 0.85)")
    group.add_argument(
        "--draft-alternatives",
        type=int,
        help="runner-up first draft tokens verified per forward by jacobi_mr (default: config, else 0)",
    )
    group.add_argument(
        "--copy-length",
        type=int,
        help="most tokens of a jacobi_mr candidate copied from the text (default: config, else the candidate length)",
    )
    group.add_argument(
        "--ngram-table",
        help="n-gram table whose continuations jacobi_mr verifies too (jacobi-forcing ngram-table; 'none': off; "
        "default: the model's generation config)",
    )
    group.add_argument(
        "--prompt-lookup-num-tokens",
        type=int,
        default=DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
        help="candidate length of transformers' prompt lookup decoding",
    )
    group.add_argument("--draft-model", help="draft model for 'assisted' ('embedded', a folder or a Hub id)")


def add_prompt_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prompts")
    group.add_argument("--task", default="humaneval", choices=tuple(TASKS), help="take prompts from this task")
    group.add_argument("--data", help="the task's data: a local file or folder, or a Hub dataset id")
    group.add_argument("--data-config", help="dataset configuration name (Hub datasets)")
    group.add_argument("--split", help="dataset split (default: test)")
    group.add_argument("--limit", type=int, default=None, help="use the first N prompts")
    group.add_argument(
        "--prompts-file",
        help="prompts from a .txt (one per line) or .jsonl ('prompt' field) file instead of a task",
    )


def add_repeat_arguments(parser: argparse.ArgumentParser, *, default_repeats: int, unit: str) -> None:
    """``--repeats`` (measured runs per ``unit`` and prompt) and ``--no-warmup`` of ``bench`` and ``sweep``."""
    parser.add_argument(
        "--repeats", type=int, default=default_repeats, help=f"measured runs per {unit} and prompt (median kept)"
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up generation")


def add_run_arguments(parser: argparse.ArgumentParser, *, default_name: str) -> None:
    group = parser.add_argument_group("output and resume")
    group.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="folder for JSON, Markdown and PNG files")
    group.add_argument("--name", default=default_name, help="file name stem of the outputs (and <name>.jsonl)")
    group.add_argument("--fresh", action="store_true", help="discard <name>.jsonl instead of resuming it")
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def knob_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The Jacobi knob options of ``args`` by knob name: one value each for ``eval``/``bench``, a list for
    ``sweep``."""
    from .speed import KNOB_NAMES

    return {name: getattr(args, name) for name in KNOB_NAMES}


def jacobi_knobs(args: argparse.Namespace):
    """The single-value knobs of ``eval``/``bench`` (None = the model's generation config, else the
    default)."""
    from .speed import JacobiKnobs

    knobs = JacobiKnobs(**knob_arguments(args))
    knobs.validate()
    return knobs


def check_models_and_methods(args: argparse.Namespace, methods: Sequence[str]) -> None:
    """Check ``--model``, ``--draft-model`` (for commands that have it) and the decoding ``methods`` before
    anything is loaded.

    Raises:
        EvaluationInputError: ``--onednn-linear`` off float32 on the CPU, a missing model folder, an unknown
            method, or ``assisted`` without a draft model.
    """
    from .loading import check_model_argument, check_onednn_placement
    from .speed import check_methods

    draft_model = getattr(args, "draft_model", None)
    if args.onednn_linear:
        check_onednn_placement(args.dtype, args.device)
    check_model_argument(args.model)
    if draft_model:
        check_model_argument(draft_model, "--draft-model")
    check_methods(methods, draft_model=draft_model)


def load_tokenizer_and_chat(args: argparse.Namespace) -> tuple[Any, bool]:
    """The tokenizer of ``--model`` and whether prompts go through its chat template (``--chat-template``)."""
    from .loading import load_tokenizer
    from .prompting import resolve_chat

    tokenizer = load_tokenizer(args.model)
    return tokenizer, resolve_chat(tokenizer, chat_setting(args))


def load_models(args: argparse.Namespace) -> tuple[Any, Any]:
    """``--model`` and the ``--draft-model`` (``None`` when not given or not an option of the command), loaded
    with ``--dtype`` on ``--device`` (and ``--onednn-linear``)."""
    from .loading import load_model

    placement = {"dtype": args.dtype, "device": args.device, "onednn_linear": args.onednn_linear}
    model = load_model(args.model, **placement)
    draft_model = getattr(args, "draft_model", None)
    draft = load_model(draft_model, **placement) if draft_model else None
    return model, draft


def load_prompts(args: argparse.Namespace, chat: bool):
    """The prompts of ``bench``/``sweep`` and a short description of their source: a prompts file, or the
    first ``--limit`` problems of ``--task`` (with the task's prompt format)."""
    from .prompting import read_prompts_file
    from .tasks import get_task

    if args.limit is not None and args.limit < 1:
        raise EvaluationInputError(f"--limit must be >= 1, got {args.limit}.")
    if args.prompts_file:
        prompts = read_prompts_file(args.prompts_file)[: args.limit]
        return prompts, f"file {args.prompts_file}"
    problems = get_task(args.task).load_problems(
        args.data, config=args.data_config, split=args.split, limit=args.limit, chat=chat
    )
    source = args.data or get_task(args.task).default_source
    return problems, f"first {len(problems)} {args.task} problems from {source}"


def chat_setting(args: argparse.Namespace) -> bool | None:
    return CHAT_CHOICES[args.chat_template]


def results_file(args: argparse.Namespace) -> Path:
    return Path(args.output_dir) / f"{args.name}.jsonl"


def canonical_command(prog: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The command line that reproduces ``args``: ``prog``, ``--model``, then every option that differs from
    its default, in the parser's order."""
    parts = shlex.split(prog)
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        value = getattr(args, action.dest, None)
        if value is None or (value == action.default and action.dest != "model"):
            continue
        flag = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            parts.append(flag)
        elif isinstance(value, list):
            if isinstance(action, argparse._AppendAction):
                for item in value:
                    parts += [flag, str(item)]
            else:
                parts += [flag, *(str(item) for item in value)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def run_reporting_errors(command: str, body: Callable[[], int]) -> int:
    """Run ``body``; bad input (``EvaluationInputError``) becomes one clear line on stderr and exit code 2."""
    try:
        return body()
    except EvaluationInputError as error:
        print(f"jacobi-forcing {command}: error: {error}", file=sys.stderr)
        return 2


def print_outputs(paths: list[Path], summary_text: str) -> None:
    print(summary_text)
    for path in paths:
        print(f"wrote {path}")


def parse_task_values(option: str, values: list[str] | None) -> dict[str, Any]:
    """``["gsm8k=path", ...]`` as ``{"gsm8k": "path"}``.

    Raises:
        EvaluationInputError: an entry without ``=``.
    """
    parsed = {}
    for entry in values or []:
        task, separator, value = entry.partition("=")
        if not separator or not task or not value:
            raise EvaluationInputError(f"{option} takes TASK=VALUE (e.g. gsm8k=data/gsm8k.jsonl), got {entry!r}.")
        parsed[task] = value
    return parsed
