"""The pipeline's diagnostic for any set of models: how often draft predictions equal the fixed point, held out.

Each model decodes the first ``--prompts`` HumanEval prompts with greedy Jacobi decoding while its trajectory is
recorded (the pipeline's `diagnose` stage settings: n = 16, 64 new tokens, seed 1), then every recorded draft state
is scored by ``fixed_point_agreement``. The ``noisy_prefix`` fraction (a draft token before the position is still
wrong) is what greedy-Jacobi TPF is made of.

    python benchmarks/diagnose_models.py --name agreement_levers base=embedded \\
        random_ar1_3ep=runs/e2e_levers/model_random_ar1_3ep_p256

``--stdlib-ids`` scores training prompts instead (indices into ``builtin:stdlib``, decoded with other random
drafts than at collection), which tells a model that learned its training states but does not transfer from one
that learned nothing:

    python benchmarks/diagnose_models.py --name agreement_train_prompts --stdlib-ids 1,2,7,9,13,18,19,20 \
        base=embedded random_ar1_kl_p1024=runs/e2e_levers/model_random_ar1_kl_p1024

Writes docs/results/<name>.{json,md,png}; the trajectories go to --work-dir/<model name> (resumable).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import RESULTS_DIR, split_named, write_results

import jacobi_forcing_hf as jf
from jacobi_forcing_hf.diagnostics import agreement_markdown, fixed_point_agreement, overall_agreement, plot_agreement
from jacobi_forcing_hf.evaluation.loading import load_model, load_tokenizer
from jacobi_forcing_hf.pipeline import held_out_prompt_dataset
from jacobi_forcing_hf.trajectories import COLLECTION_DRAFT_INITIALIZERS, collect_trajectories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=lambda argument: split_named(argument, "MODEL"), metavar="NAME=MODEL")
    parser.add_argument("--name", required=True, help="docs/results/<name>.{json,md,png}")
    parser.add_argument("--prompts", type=int, default=8, help="first N HumanEval prompts")
    parser.add_argument(
        "--stdlib-ids",
        type=lambda value: [int(part) for part in value.split(",")],
        metavar="ID,ID,...",
        help="score these builtin:stdlib prompts (training prompts) instead of HumanEval",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the random initial drafts (collection used 0: 1 gives new drafts)"
    )
    parser.add_argument(
        "--draft-init",
        choices=COLLECTION_DRAFT_INITIALIZERS,
        default="random_context",
        help="initial drafts of the trajectories (repeat_last: for models trained on repeat_last trajectories)",
    )
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--work-dir", default="runs/diagnose_models")
    args = parser.parse_args()
    names = [name for name, _ in args.models]
    if len(set(names)) != len(names):
        parser.error(f"model names must differ, got {names}")

    if args.stdlib_ids:
        prompts = jf.load_prompts("builtin:stdlib").select(args.stdlib_ids)
        described = f"{len(prompts)} stdlib training prompts (ids {', '.join(map(str, args.stdlib_ids))})"
        work_dir = Path(args.work_dir) / f"stdlib-{'-'.join(map(str, args.stdlib_ids))}"
    else:
        prompts = held_out_prompt_dataset(args.prompts)
        described, work_dir = f"{args.prompts} held-out HumanEval prompts", Path(args.work_dir)
    if args.draft_init != "random_context":
        described += f", {args.draft_init} drafts"
        work_dir = work_dir / args.draft_init
    if args.seed != 1:
        described += f", initial-draft seed {args.seed}"
        work_dir = work_dir / f"seed{args.seed}"
    reports, iterations = {}, {}
    for name, source in args.models:
        model, tokenizer = load_model(source), load_tokenizer(source)
        trajectories = collect_trajectories(
            model,
            tokenizer,
            prompts,
            block_size=args.block_size,
            max_new_tokens=args.max_new_tokens,
            batch_size=8,
            output_dir=work_dir / name,
            seed=args.seed,
            draft_init=args.draft_init,
        )
        reports[name] = fixed_point_agreement(model, trajectories)
        iterations[name] = statistics.mean(trajectories["num_iterations"])
        print(name, "noisy-prefix agreement:", overall_agreement(reports[name]["by_offset"]["noisy_prefix"]))
    overall = {name: overall_agreement(report["by_offset"]["noisy_prefix"]) for name, report in reports.items()}
    summary = "".join(
        f"* **{name}**: noisy-prefix agreement over all offsets {value}; {iterations[name]:.2f} Jacobi iterations per "
        f"block (block TPF {args.block_size / iterations[name]:.2f})\n"
        for name, value in overall.items()
    )
    text = (
        f"# Draft predictions equal to the fixed point ({described}, n = "
        f"{args.block_size}, {args.max_new_tokens} new tokens)\n\n{summary}\n{agreement_markdown(reports)}"
    )
    write_results(
        args.name,
        {
            "models": dict(args.models),
            "prompts": described,
            "noisy_prefix_all_offsets": overall,
            "iterations_per_block": iterations,
            "reports": reports,
        },
        text,
    )
    plot_agreement(reports, RESULTS_DIR / f"{args.name}.png")


if __name__ == "__main__":
    main()
