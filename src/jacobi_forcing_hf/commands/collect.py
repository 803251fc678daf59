"""``jacobi-forcing collect``: a model's own Jacobi trajectories on a prompt set, saved as a ``datasets`` folder."""

from __future__ import annotations

import argparse

from ..evaluation.loading import DTYPES
from ..trajectories import COLLECTION_DRAFT_INITIALIZERS
from ._errors import report_bad_input


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="collect Jacobi trajectories (resumable; one shard per process under accelerate launch or torchrun)",
        description=(
            "Decode every prompt with block Jacobi decoding and record each block's states, from the initial draft "
            "to the fixed point. Re-running with the same arguments resumes; the finished folder is readable with "
            "datasets.load_from_disk."
        ),
    )
    parser.add_argument("--model", default="embedded", help='model path or Hub id, or "embedded" (SmolLM2-135M)')
    parser.add_argument(
        "--prompts",
        default="builtin:stdlib",
        help='prompt source: "builtin:stdlib", a saved dataset folder, a .json/.jsonl/.parquet file or a Hub id '
        "(a 'messages' or 'prompt' column)",
    )
    parser.add_argument("--split", default="train", help="split of a dataset dict, data folder or Hub dataset")
    parser.add_argument("--output-dir", required=True, help="folder for the manifest, shards and merged dataset")
    parser.add_argument("--block-size", type=int, default=16, help="n, tokens per block")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="most new tokens per prompt")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts decoded together")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random initial drafts")
    parser.add_argument(
        "--draft-init",
        choices=COLLECTION_DRAFT_INITIALIZERS,
        default="random_context",
        help="tokens of a newly opened block: drawn from the context (the reference) or the last known token "
        "repeated (decode a model trained on them with the same draft_init)",
    )
    parser.add_argument("--limit", type=int, default=None, help="collect only the first N prompts")
    parser.add_argument("--shard-index", type=int, default=None, help="this process's shard (default: accelerate)")
    parser.add_argument("--num-shards", type=int, default=None, help="number of shards (default: accelerate)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..trajectories import collect_trajectories, distributed_state

    device = distributed_state().device
    model, tokenizer = load_model(args.model, getattr(torch, args.dtype), device)
    try:
        trajectories = collect_trajectories(
            model,
            tokenizer,
            args.prompts,
            block_size=args.block_size,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            output_dir=args.output_dir,
            seed=args.seed,
            draft_init=args.draft_init,
            shard_index=args.shard_index,
            num_shards=args.num_shards,
            limit=args.limit,
            split=args.split,
        )
    except ValueError as error:  # bad input, found before any decoding
        return report_bad_input("collect", error)
    prompts = len(set(trajectories["prompt_id"]))
    iterations = sum(trajectories["num_iterations"]) / max(len(trajectories), 1)
    print(
        f"{len(trajectories)} block trajectories of {prompts} prompts in {args.output_dir} "
        f"({iterations:.2f} Jacobi iterations per block of {args.block_size} tokens)"
    )
    return 0


def load_model(name: str, dtype, device):
    """``(model, tokenizer)`` for a path or Hub id, or the embedded SmolLM2 for ``"embedded"``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..models import load_default_model

    if name == "embedded":
        return load_default_model(dtype=dtype, device=device)
    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype).to(device).eval()
    return model, tokenizer
