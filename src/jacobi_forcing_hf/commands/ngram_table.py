"""``jacobi-forcing ngram-table``: build a corpus n-gram table from a model's own greedy outputs (or trajectories)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.loading import DTYPES
from ._errors import report_bad_input


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ngram-table",
        help="build an n-gram table of a model's own outputs, verified as extra candidates by jacobi_mr",
        description=(
            "Generate the model's greedy outputs on a prompt set (resumable) or read the fixed points of collected "
            "trajectories, count the continuations of every short n-gram in them, and save the frequent ones as a "
            "table for generate(..., decoding='jacobi_mr', ngram_table=PATH). Use prompts that are not the "
            "evaluation's."
        ),
    )
    parser.add_argument("--output", required=True, help="the table file to write (JSON)")
    source = parser.add_argument_group("corpus: greedy outputs of --model, or --trajectories")
    source.add_argument(
        "--model",
        default="embedded",
        help='model path or Hub id, "embedded" (SmolLM2-135M) or "embedded-jacobi-forcing" (with the shipped adapter)',
    )
    source.add_argument("--prompts", default="builtin:stdlib", help="prompt source (as for collect)")
    source.add_argument("--split", default="train", help="split of a dataset dict, data folder or Hub dataset")
    source.add_argument("--num-prompts", type=int, default=None, help="the first N prompts (default: all)")
    source.add_argument("--max-new-tokens", type=int, default=128, help="most new tokens per prompt")
    source.add_argument("--batch-size", type=int, default=16, help="prompts decoded together")
    source.add_argument(
        "--corpus-dir", default=None, help="where the greedy outputs are kept (default: next to --output)"
    )
    source.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype")
    source.add_argument("--onednn-linear", action="store_true", help="oneDNN linear layers (float32 CPU)")
    source.add_argument(
        "--trajectories",
        nargs="+",
        default=None,
        help="collected trajectory folders to read instead of generating (their fixed points are greedy outputs)",
    )
    table = parser.add_argument_group("table")
    table.add_argument("--max-ngram-size", type=int, default=3, help="longest key n-gram")
    table.add_argument("--continuation-length", type=int, default=8, help="tokens of a stored continuation")
    table.add_argument("--continuations-per-key", type=int, default=4, help="most continuations kept per key")
    table.add_argument("--min-count", type=int, default=2, help="times a continuation must occur to be kept")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..generation.ngram_table import NgramTable, check_table_settings

    settings = {
        "max_ngram_size": args.max_ngram_size,
        "continuation_length": args.continuation_length,
        "continuations_per_key": args.continuations_per_key,
        "min_count": args.min_count,
    }
    try:
        check_table_settings(**settings)  # before any generation
        outputs = _trajectory_corpus(args) if args.trajectories else _greedy_corpus(args)
    except ValueError as error:
        return report_bad_input("ngram-table", error)
    table = NgramTable.from_sequences(outputs, **settings)
    path = table.save(args.output)
    tokens = sum(len(output) for output in outputs)
    print(f"{len(table)} keys from {len(outputs)} outputs ({tokens} tokens) in {path} ({path.stat().st_size} bytes)")
    return 0


def _greedy_corpus(args: argparse.Namespace) -> list[list[int]]:
    from ..evaluation.loading import load_model, load_tokenizer
    from ..ngram_corpus import generate_greedy_outputs

    tokenizer = load_tokenizer(args.model)  # a bad --model is an EvaluationInputError, a ValueError
    model = load_model(args.model, dtype=args.dtype, onednn_linear=args.onednn_linear)
    output = Path(args.output)
    corpus_dir = args.corpus_dir or output.with_name(f"{output.stem}-corpus")
    return generate_greedy_outputs(
        model,
        tokenizer,
        args.prompts,
        output_dir=corpus_dir,
        num_prompts=args.num_prompts,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        split=args.split,
    )


def _trajectory_corpus(args: argparse.Namespace) -> list[list[int]]:
    from ..evaluation.loading import load_tokenizer
    from ..ngram_corpus import trajectory_outputs
    from ..trajectories import load_trajectories

    eos_token_id = load_tokenizer(args.model).eos_token_id
    return [
        output for folder in args.trajectories for output in trajectory_outputs(load_trajectories(folder), eos_token_id)
    ]
