"""oneDNN linear layers against PyTorch's default CPU kernels, side by side in one run.

Two copies of the embedded model: as loaded (MKL kernels) and converted by ``jacobi_forcing_hf.use_onednn_linear``.
For every prompt, each decoding run goes through both copies back to back. The order is: method 1 stock, method 1
oneDNN, method 2 stock, and so on. A change of machine load during the run therefore hits both copies alike.
Reported per copy and method:
* TPF and tokens/s;
* speed-up over the same copy's greedy decoding, and over the stock model's greedy decoding;
* outputs equal to the stock model's greedy output.

    python benchmarks/bench_onednn.py --prompts 20 --max-new-tokens 128

Writes docs/results/bench_onednn.{json,md}.
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import humaneval_chat_inputs, write_results

from jacobi_forcing_hf import enable_jacobi, load_default_model, use_onednn_linear
from jacobi_forcing_hf.evaluation.speed import JacobiKnobs, MethodSettings, generate_measured, summarize, warm_up

# (label, method, knobs): the CPU recipe (n = 4, pool 8), the package default (n = 16, pool 4), prompt lookup
RUNS = (
    ("greedy", "greedy", JacobiKnobs()),
    ("prompt_lookup", "prompt_lookup", JacobiKnobs()),
    ("jacobi_mr n=4 K=2 pool=8", "jacobi_mr", JacobiKnobs(block_size=4, num_blocks=2, pool_size=8)),
    ("jacobi_mr n=16 K=2 pool=4", "jacobi_mr", JacobiKnobs(block_size=16, num_blocks=2, pool_size=4)),
)
KERNELS = ("stock", "onednn")


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[dict]]]:
    """Per kernel variant and run label, one record per prompt (``summarize``'s input)."""
    stock, tokenizer = load_default_model(dtype=torch.float32)
    models = {"stock": enable_jacobi(stock.eval()), "onednn": use_onednn_linear(copy.deepcopy(stock))}
    inputs = humaneval_chat_inputs(tokenizer, args.prompts)
    settings = {label: MethodSettings(args.max_new_tokens, knobs) for label, _, knobs in RUNS}
    records: dict[str, dict[str, list[dict]]] = {kernel: {label: [] for label, _, _ in RUNS} for kernel in KERNELS}
    with torch.inference_mode():
        for model in models.values():
            for label, method, _ in RUNS:
                warm_up(model, inputs[0], [method], settings[label])
        for index, prompt in enumerate(inputs):
            reference: list[int] | None = None
            for label, method, _ in RUNS:
                for kernel, model in models.items():
                    generation = generate_measured(model, prompt, method, settings[label])
                    reference = generation.token_ids if reference is None else reference
                    records[kernel][label].append(
                        {
                            "new_tokens": generation.new_tokens,
                            "forwards": generation.forwards,
                            "seconds": generation.seconds,
                            "stopped_at_eos": generation.stopped_at_eos,
                            "matches_greedy": generation.token_ids == reference,
                        }
                    )
                    print(f"prompt {index} {kernel:6} {label}: {generation.new_tokens / generation.seconds:.1f} tok/s")
    return records


def summaries(records: dict[str, dict[str, list[dict]]]) -> list[dict]:
    stock_greedy = summarize(records["stock"]["greedy"])["tokens_per_s"]
    rows = []
    for kernel in KERNELS:
        own_greedy = summarize(records[kernel]["greedy"])["tokens_per_s"]
        for label, _, _ in RUNS:
            summary = summarize(records[kernel][label], own_greedy)  # matches_greedy: the stock model's greedy
            rows.append(
                {
                    "kernels": kernel,
                    "run": label,
                    **summary,
                    "speedup_vs_stock_greedy": summary["tokens_per_s"] / stock_greedy,
                }
            )
    return rows


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# oneDNN linear layers vs PyTorch's default CPU kernels (embedded model, float32)",
        "",
        f"First {args.prompts} HumanEval prompts through the chat template, {args.max_new_tokens} new tokens, one "
        "timed generation per prompt and run. Every run goes through both copies of the model back to back. "
        "**vs own greedy** = tokens/s over the same copy's greedy tokens/s; **vs stock greedy** = over the "
        "stock model's greedy tokens/s; **same as stock greedy** = prompts whose tokens equal the stock "
        "model's greedy output.",
        "",
        "| kernels | run | TPF | tokens/s | vs own greedy | vs stock greedy | same as stock greedy |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {row['kernels']} | {row['run']} | {row['tpf']:.2f} | {row['tokens_per_s']:.1f} | {row['speedup']:.2f}× | "
        f"{row['speedup_vs_stock_greedy']:.2f}× | {row['matches_greedy']}/{row['prompts']} |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20, help="first N HumanEval prompts")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--name", default="bench_onednn")
    args = parser.parse_args()
    records = measure(args)
    rows = summaries(records)
    write_results(args.name, {"settings": vars(args), "rows": rows, "records": records}, markdown(rows, args))
    print(markdown(rows, args))


if __name__ == "__main__":
    main()
