"""Speed of every decoding method, and a Jacobi knob sweep, on the embedded SmolLM2-135M-Instruct model.

Writes into docs/results/:
  bench_embedded.{json,md,png}   greedy, jacobi, jacobi_mr and prompt lookup on the first HumanEval prompts
  sweep_embedded.{json,md,png}   jacobi_mr over block_size × num_blocks × pool_size (+ sweep_embedded_speedup.png)
and the resumable bench_embedded.jsonl / sweep_embedded.jsonl beside them: a killed run re-run with the same
command continues where it stopped. Each output records the `jacobi-forcing ...` command line that reproduces it.

    python benchmarks/bench_embedded.py              # both (about 30 minutes on 2 idle CPU cores)
    python benchmarks/bench_embedded.py --only bench
    python benchmarks/bench_embedded.py --only sweep
"""

from __future__ import annotations

import argparse
import sys

from jacobi_forcing_hf.cli import main as cli

BENCH = [
    "bench", "--model", "embedded", "--task", "humaneval", "--limit", "10", "--max-new-tokens", "128",
    "--methods", "greedy", "jacobi", "jacobi_mr", "prompt_lookup", "--repeats", "3",
    "--output-dir", "docs/results", "--name", "bench_embedded",
]  # fmt: skip
SWEEP = [
    "sweep", "--model", "embedded", "--task", "humaneval", "--limit", "5", "--max-new-tokens", "64",
    "--method", "jacobi_mr", "--block-size", "8", "16", "32", "64", "--num-blocks", "1", "2",
    "--pool-size", "0", "4", "--activation-ratio", "0.85",
    "--output-dir", "docs/results", "--name", "sweep_embedded",
]  # fmt: skip
RUNS = {"bench": BENCH, "sweep": SWEEP}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=tuple(RUNS), help="run only this benchmark")
    args = parser.parse_args()
    for name, argv in RUNS.items():
        if args.only in (None, name):
            code = cli(argv)
            if code:
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
