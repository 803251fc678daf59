"""``jacobi-forcing sweep``: TPF and tokens/s over a grid of Jacobi knobs."""

from __future__ import annotations

import argparse

from ..evaluation import cli_options

DESCRIPTION = (
    "Measure a Jacobi method at every cell of the grid block_size × num_blocks × pool_size × activation_ratio × "
    "draft_alternatives × copy_length (and greedy once, for the speed-up) on the same prompts. Grid values are "
    "checked against the knob ranges before anything runs. Writes <name>.json, <name>.md, TPF heatmaps <name>.png, "
    "speed-up heatmaps <name>_speedup.png and the resumable <name>.jsonl into --output-dir."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="grid search over the Jacobi knobs", description=DESCRIPTION)
    cli_options.add_model_arguments(parser)
    group = parser.add_argument_group("grid")
    group.add_argument("--method", default="jacobi_mr", choices=("jacobi", "jacobi_mr"), help="method to sweep")
    group.add_argument("--block-size", type=int, nargs="+", default=[16, 32, 64], help="values of n (>= 1)")
    group.add_argument("--num-blocks", type=int, nargs="+", default=[1, 2], help="values of K (>= 1)")
    group.add_argument("--pool-size", type=int, nargs="+", default=[0, 4], help="values of the pool size (>= 0)")
    group.add_argument("--activation-ratio", type=float, nargs="+", default=[0.85], help="values of r in (0, 1]")
    group.add_argument(
        "--draft-alternatives", type=int, nargs="+", default=[0], help="values of draft_alternatives (>= 0)"
    )
    group.add_argument(
        "--copy-length",
        type=int,
        nargs="+",
        default=[None],
        help="values of copy_length (>= 1; default: the model's generation config, else the candidate length)",
    )
    group.add_argument(
        "--ngram-table",
        nargs="+",
        default=[None],
        help="n-gram table files, or 'none' for no table (jacobi-forcing ngram-table; default: the model's "
        "generation config, else none)",
    )
    group.add_argument("--max-new-tokens", type=int, default=128, help="token budget per prompt")
    cli_options.add_prompt_arguments(parser)
    cli_options.add_repeat_arguments(parser, default_repeats=1, unit="cell")
    cli_options.add_run_arguments(parser, default_name="sweep")
    parser.set_defaults(handler=run, command_parser=parser)


def run(args: argparse.Namespace) -> int:
    return cli_options.run_reporting_errors("sweep", lambda: _sweep(args))


def _sweep(args: argparse.Namespace) -> int:
    from ..evaluation.bench import check_run_sizes
    from ..evaluation.report import write_reports
    from ..evaluation.sweep import SweepGrid, check_sweep_method, run_sweep

    command = cli_options.canonical_command("jacobi-forcing sweep", args.command_parser, args)
    grid = SweepGrid(**cli_options.knob_arguments(args))
    check_sweep_method(args.method, grid)
    check_run_sizes(args.max_new_tokens, args.repeats)
    cli_options.check_models_and_methods(args, [args.method])
    tokenizer, chat = cli_options.load_tokenizer_and_chat(args)
    prompts, source = cli_options.load_prompts(args, chat)
    model, _ = cli_options.load_models(args)
    result = run_sweep(
        model,
        tokenizer,
        prompts,
        grid,
        method=args.method,
        max_new_tokens=args.max_new_tokens,
        repeats=args.repeats,
        warmup=not args.no_warmup,
        use_chat_template=chat,
        model_name=args.model,
        prompt_source=source,
        results_file=cli_options.results_file(args),
        fresh=args.fresh,
        progress=not args.no_progress,
    )
    paths = write_reports(result, args.output_dir, args.name, command)
    cells = [row for row in result.summary if row["cell"] is not None]
    best_tpf = max(cells, key=lambda row: row["tpf"])
    best_speed = max(cells, key=lambda row: row["tokens_per_s"])
    cli_options.print_outputs(
        paths,
        f"{len(cells)} cells; best TPF {best_tpf['tpf']:.2f} at {best_tpf['cell']}; "
        f"best tokens/s {best_speed['tokens_per_s']:.1f} ({best_speed['speedup']:.2f}x greedy) "
        f"at {best_speed['cell']}",
    )
    return 0
