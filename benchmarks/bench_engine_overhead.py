"""Engine overhead: wall time of Jacobi decoding vs the time spent inside the model's forward calls.

Every iteration of the engine is exactly one model forward; whatever else it does (building the draft tree and the
4D mask, acceptance, cache bookkeeping, candidate search) is overhead. Forward time is measured in situ with
forward pre/post hooks, so each iteration is compared with a bare forward of exactly its own shape.
Target: overhead ratio (total / forward) <= 1.10.

    python benchmarks/bench_engine_overhead.py --prompts 5 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import time

import torch
from common import humaneval_chat_inputs, write_results

from jacobi_forcing_hf import load_default_model

SETTINGS = {
    "jacobi n=16": {"decoding": "jacobi", "block_size": 16},
    "jacobi_mr defaults": {"decoding": "jacobi_mr"},
    "jacobi_mr n=64 K=2 pool=4 r=0.85": {
        "decoding": "jacobi_mr",
        "block_size": 64,
        "num_blocks": 2,
        "pool_size": 4,
        "activation_ratio": 0.85,
    },
}


class ForwardTimer:
    """Sums wall time spent inside ``model.forward``."""

    def __init__(self, model) -> None:
        self.total = 0.0
        self._start = 0.0
        self._handles = [
            model.register_forward_pre_hook(self._before),
            model.register_forward_hook(self._after),
        ]

    def _before(self, *_):
        self._start = time.perf_counter()

    def _after(self, *_):
        self.total += time.perf_counter() - self._start

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    inputs = humaneval_chat_inputs(tokenizer, args.prompts)
    rows = []
    for name, setting in SETTINGS.items():
        model.generate(**inputs[0], max_new_tokens=8, do_sample=False, **setting)  # warm-up
        total = forward = 0.0
        forwards = 0
        for prompt in inputs:
            timer = ForwardTimer(model)
            start = time.perf_counter()
            with torch.inference_mode():
                model.generate(**prompt, max_new_tokens=args.max_new_tokens, do_sample=False, **setting)
            total += time.perf_counter() - start
            forward += timer.total
            forwards += model.jacobi_stats.forwards
            timer.close()
        rows.append(
            {
                "setting": name,
                "forwards": forwards,
                "wall_s": round(total, 3),
                "forward_s": round(forward, 3),
                "overhead_ratio": round(total / forward, 4),
                "overhead_ms_per_iteration": round(1000 * (total - forward) / forwards, 2),
            }
        )
        print(rows[-1])
    table = [
        "| setting | forwards | wall s | in forward s | overhead ratio | overhead ms / iteration |",
        "|---|---|---|---|---|---|",
    ]
    table += [
        f"| {r['setting']} | {r['forwards']} | {r['wall_s']} | {r['forward_s']} | {r['overhead_ratio']} | "
        f"{r['overhead_ms_per_iteration']} |"
        for r in rows
    ]
    markdown = (
        f"Engine overhead on the embedded SmolLM2-135M-Instruct, {args.prompts} HumanEval prompts, "
        f"{args.max_new_tokens} new tokens, fp32. Overhead ratio = wall time of generate / time inside the model's "
        "forward (target <= 1.10).\n\n" + "\n".join(table) + "\n"
    )
    write_results(
        "engine_overhead", {"prompts": args.prompts, "max_new_tokens": args.max_new_tokens, "rows": rows}, markdown
    )


if __name__ == "__main__":
    main()
