"""``jacobi-forcing bench``: speed of every decoding method on the same prompts, in one process."""

from __future__ import annotations

import argparse

from ..evaluation import cli_options
from ..evaluation.bench import DEFAULT_BENCH_METHODS

DESCRIPTION = (
    "Measure TPF (new tokens / model forwards, prefill counted), tokens/s (whole generate call) and "
    "speed-up over greedy for each decoding method on the same prompts, warm-up first, median of --repeats. "
    "Greedy always runs as the baseline. Writes <name>.json, <name>.md, <name>.png and the resumable "
    "<name>.jsonl into --output-dir."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="speed of decoding methods side by side", description=DESCRIPTION)
    cli_options.add_model_arguments(parser)
    cli_options.add_method_arguments(parser, default_methods=DEFAULT_BENCH_METHODS, default_max_new_tokens=128)
    cli_options.add_prompt_arguments(parser)
    cli_options.add_repeat_arguments(parser, default_repeats=3, unit="method")
    cli_options.add_run_arguments(parser, default_name="bench")
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    return cli_options.run_reporting_errors("bench", lambda: _bench(args))


def _bench(args: argparse.Namespace) -> int:
    from ..evaluation.bench import benchmark_speed, check_run_sizes
    from ..evaluation.report import write_reports

    command = cli_options.canonical_command("jacobi-forcing bench", args.command_parser, args)
    check_run_sizes(args.max_new_tokens, args.repeats)
    knobs = cli_options.jacobi_knobs(args)
    cli_options.check_models_and_methods(args, args.methods)
    tokenizer, chat = cli_options.load_tokenizer_and_chat(args)
    prompts, source = cli_options.load_prompts(args, chat)
    model, draft = cli_options.load_models(args)
    result = benchmark_speed(
        model,
        tokenizer,
        prompts,
        methods=args.methods,
        max_new_tokens=args.max_new_tokens,
        repeats=args.repeats,
        warmup=not args.no_warmup,
        knobs=knobs,
        prompt_lookup_num_tokens=args.prompt_lookup_num_tokens,
        draft_model=draft,
        draft_model_name=args.draft_model,
        use_chat_template=chat,
        model_name=args.model,
        prompt_source=source,
        results_file=cli_options.results_file(args),
        fresh=args.fresh,
        progress=not args.no_progress,
    )
    paths = write_reports(result, args.output_dir, args.name, command)
    table = "\n".join(
        f"{row['method']:>14}: TPF {row['tpf']:.2f}  {row['tokens_per_s']:.1f} tokens/s  speed-up {row['speedup']:.2f}x"
        for row in result.summary
    )
    cli_options.print_outputs(paths, table)
    return 0
