"""Trajectory collection on the embedded model: batch 8 against batch 1 on the same prompts, and storage size.

Run from the repository root:

    python benchmarks/bench_collection.py            # 8 built-in prompts x 64 new tokens, n = 16

Writes docs/results/collection.json, docs/results/collection.md and docs/results/packed_sequence.png (one packed
sequence of the collected trajectories). Both batch sizes run in one process on the same prompts; the order of the
runs alternates over the repeats so that neither always runs first.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from jacobi_forcing_hf import load_default_model, noise_schedule
from jacobi_forcing_hf.data.figures import plot_packed_sequence
from jacobi_forcing_hf.data.noise import schedule_index
from jacobi_forcing_hf.data.packing import build_training_sequences
from jacobi_forcing_hf.trajectories import collect_trajectories

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def timed_collection(model, tokenizer, *, batch_size: int, args) -> tuple[float, object, dict[str, int]]:
    """Collect into a fresh output folder (shards written as in real use); return seconds, rows and bytes on disk."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        trajectories = collect_trajectories(
            model,
            tokenizer,
            "builtin:stdlib",
            block_size=args.block_size,
            max_new_tokens=args.max_new_tokens,
            batch_size=batch_size,
            limit=args.prompts,
            output_dir=folder,
            progress=False,
        )
        elapsed = time.perf_counter() - start
        sizes = {
            "parquet_shards_bytes": folder_bytes(Path(folder) / "shards", "*.parquet"),
            "merged_arrow_bytes": folder_bytes(Path(folder), "data-*.arrow"),
        }
    return elapsed, trajectories, sizes


def folder_bytes(folder: Path, pattern: str) -> int:
    return sum(path.stat().st_size for path in folder.glob(pattern))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="built-in prompts to collect")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each batch size")
    parser.add_argument("--window-size", type=int, default=4, help="noise window of the pictured packing")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    collect_trajectories(  # warm-up: first-call costs (kernels, allocator) land here, not in a timed run
        model, tokenizer, "builtin:stdlib", block_size=args.block_size, max_new_tokens=16, limit=2, progress=False
    )
    seconds: dict[int, list[float]] = {1: [], 8: []}
    results, sizes = {}, {}
    for repeat in range(args.repeats):
        for batch_size in (8, 1) if repeat % 2 == 0 else (1, 8):
            elapsed, results[batch_size], sizes[batch_size] = timed_collection(
                model, tokenizer, batch_size=batch_size, args=args
            )
            seconds[batch_size].append(elapsed)
    if results[1]["output_ids"] != results[8]["output_ids"]:
        raise AssertionError("batch 8 and batch 1 reached different fixed points")

    trajectories = results[8]
    tokens = sum(len(ids) for ids in trajectories["output_ids"])
    rows = len(trajectories)
    parquet_bytes, arrow_bytes = sizes[8]["parquet_shards_bytes"], sizes[8]["merged_arrow_bytes"]

    per_batch = {}
    for batch_size, times in seconds.items():
        best = min(times)
        per_batch[batch_size] = {
            "seconds": times,
            "best_seconds": best,
            "tokens_per_second": tokens / best,
            "prompts_per_second": args.prompts / best,
        }
    speedup = per_batch[8]["tokens_per_second"] / per_batch[1]["tokens_per_second"]
    summary = {
        "model": "SmolLM2-135M-Instruct (embedded), fp32",
        "hardware": f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "prompts": args.prompts,
        "prompt_source": "builtin:stdlib (first prompts)",
        "block_size": args.block_size,
        "max_new_tokens": args.max_new_tokens,
        "block_trajectories": rows,
        "fixed_point_tokens": tokens,
        "mean_states_per_block": sum(len(states) for states in trajectories["states"]) / rows,
        "mean_iterations_per_block": sum(trajectories["num_iterations"]) / rows,
        "batch_1": per_batch[1],
        "batch_8": per_batch[8],
        "speedup_batch_8_over_1": speedup,
        "storage": {
            "parquet_shards_bytes": parquet_bytes,
            "merged_arrow_bytes": arrow_bytes,
            "parquet_bytes_per_1k_block_trajectories": parquet_bytes / rows * 1000,
            "arrow_bytes_per_1k_block_trajectories": arrow_bytes / rows * 1000,
            "parquet_bytes_per_1k_prompts": parquet_bytes / args.prompts * 1000,
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "collection.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / "collection.md").write_text(markdown(summary))

    packed = build_training_sequences(trajectories, block_size=args.block_size, window_size=args.window_size)
    row = packed[0]
    schedule = noise_schedule(args.window_size)
    targets = [schedule[schedule_index(k, window_size=args.window_size)] for k in range(row["num_blocks"])]
    plot_packed_sequence(row, RESULTS / "packed_sequence.png", target_ratios=targets)
    print(markdown(summary))


def markdown(summary: dict) -> str:
    storage = summary["storage"]
    lines = [
        "# Trajectory collection: batch 8 vs batch 1",
        "",
        f"{summary['model']} on {summary['hardware']}, torch {summary['torch']}. {summary['prompts']} prompts of "
        f"{summary['prompt_source']}, {summary['max_new_tokens']} new tokens, block size n = {summary['block_size']}: "
        f"{summary['block_trajectories']} block trajectories, {summary['fixed_point_tokens']} fixed-point tokens, "
        f"{summary['mean_iterations_per_block']:.1f} Jacobi iterations per block (untrained model). "
        "Same prompts and fixed points for both batch sizes, one process; best of the timed runs.",
        "",
        "| batch size | seconds | tokens/s | prompts/s |",
        "|---:|---:|---:|---:|",
    ]
    for batch_size in (1, 8):
        result = summary[f"batch_{batch_size}"]
        lines.append(
            f"| {batch_size} | {result['best_seconds']:.1f} | {result['tokens_per_second']:.1f} | "
            f"{result['prompts_per_second']:.3f} |"
        )
    lines += [
        "",
        f"Speed-up of batch 8 over batch 1: **{summary['speedup_batch_8_over_1']:.2f}x**.",
        "",
        "| storage | bytes | per 1k block trajectories |",
        "|---|---:|---:|",
        f"| Parquet shards (zstd) | {storage['parquet_shards_bytes']:,} | "
        f"{storage['parquet_bytes_per_1k_block_trajectories']:,.0f} |",
        f"| merged Arrow (load_from_disk) | {storage['merged_arrow_bytes']:,} | "
        f"{storage['arrow_bytes_per_1k_block_trajectories']:,.0f} |",
        "",
        "Command: `python benchmarks/bench_collection.py` (writes this file, collection.json and packed_sequence.png).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
