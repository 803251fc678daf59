"""``jacobi-forcing pack``: trajectories -> noise-scheduled training sequences, saved as a ``datasets`` folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.noise import NOISE_STRATEGIES
from ._errors import report_bad_input


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pack",
        help="pack trajectories into prompt ‖ noisy block ‖ clean block … training sequences",
        description=(
            "Pick one noisy state per block with a noise schedule and write prompt ‖ K_0 ‖ L_0 ‖ … ‖ K_T-1 ‖ L_T-1 "
            "sequences as a datasets folder (optionally also JSONL or Parquet)."
        ),
    )
    parser.add_argument("trajectories", help="folder written by `jacobi-forcing collect` (or any saved dataset)")
    parser.add_argument("--output-dir", required=True, help="folder for the packed dataset (save_to_disk)")
    parser.add_argument("--block-size", type=int, default=None, help="n (default: read from the trajectories)")
    parser.add_argument("--window-size", type=int, default=16, help="w, the number of target noise ratios")
    parser.add_argument("--strategy", choices=NOISE_STRATEGIES, default="progressive", help="noise schedule")
    parser.add_argument("--min-noisy-ratio", type=float, default=0.0, help="smallest target ratio")
    parser.add_argument("--max-noisy-ratio", type=float, default=1.0, help="largest target ratio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    parser.add_argument("--max-length", type=int, default=None, help="drop sequences longer than this")
    parser.add_argument("--num-variants", type=int, default=1, help="packings per prompt (other noisy states)")
    parser.add_argument("--jsonl", default=None, help="also write the sequences to this JSONL file")
    parser.add_argument("--parquet", default=None, help="also write the sequences to this Parquet file")
    parser.add_argument(
        "--allow-incomplete", action="store_true", help="pack a collection whose batches are not all finished"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..data.packing import build_training_sequences

    try:
        trajectories = read_trajectories(args.trajectories, allow_incomplete=args.allow_incomplete)
        block_size = args.block_size or len(trajectories[0]["states"][0])
        packed = build_training_sequences(
            trajectories,
            block_size=block_size,
            window_size=args.window_size,
            strategy=args.strategy,
            min_noisy_ratio=args.min_noisy_ratio,
            max_noisy_ratio=args.max_noisy_ratio,
            seed=args.seed,
            max_length=args.max_length,
            num_variants=args.num_variants,
        )
    except (ValueError, FileNotFoundError) as error:  # bad input, found before anything is written
        return report_bad_input("pack", error)
    packed.save_to_disk(args.output_dir)
    if args.jsonl:
        packed.to_json(args.jsonl, lines=True)
    if args.parquet:
        packed.to_parquet(args.parquet)
    print(f"{len(packed)} training sequences of block size {block_size} in {args.output_dir}")
    return 0


def read_trajectories(path: str, *, allow_incomplete: bool):
    """A collection folder (with its manifest) through ``load_trajectories``, else any ``save_to_disk`` folder."""
    from datasets import load_from_disk

    from ..trajectories import MANIFEST_NAME, load_trajectories

    if (Path(path) / MANIFEST_NAME).exists():
        return load_trajectories(path, allow_incomplete=allow_incomplete)
    return load_from_disk(path)
