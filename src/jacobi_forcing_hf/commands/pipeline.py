"""``jacobi-forcing pipeline``: the whole recipe (collect → pack → train → diagnose → eval) as one resumable run."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..pipeline import STAGES

    parser = subparsers.add_parser(
        "pipeline",
        help="run the whole Jacobi Forcing recipe from a YAML config, resuming where it stopped",
        description=(
            "Collect the model's trajectories on training prompts, pack them, train with Jacobi Forcing, diagnose "
            "the draft predictions on held-out prompts, and evaluate pass@1 and speed (greedy, jacobi, jacobi_mr) "
            "of the base and the trained model. Each stage writes into the run folder and is skipped once done; "
            "re-run the same command to resume an interrupted run (also in a later session)."
        ),
    )
    parser.add_argument("--config", required=True, help="pipeline YAML (e.g. examples/pipelines/smollm2_code.yaml)")
    parser.add_argument("--run-dir", default=None, help="override run_dir of the config")
    parser.add_argument("--model", default=None, help="override model: 'embedded', a local folder or a Hub id")
    parser.add_argument("--num-prompts", type=int, default=None, help="override the number of training prompts")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N problems (quick runs)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="override rounds; more than a finished run had trains further rounds on top of its last one",
    )
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=None, help="run only these stages (default: all, in order)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline import Pipeline, PipelineConfig

    config = PipelineConfig.from_yaml(
        args.config,
        run_dir=args.run_dir,
        model=args.model,
        num_prompts=args.num_prompts,
        eval_limit=args.limit,
        rounds=args.rounds,
    )
    summaries = Pipeline(config).run(args.stages)
    print(f"[pipeline] finished stages: {', '.join(summaries)} in {config.run_dir}")
    return 0
