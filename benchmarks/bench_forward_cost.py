"""What one forward costs by query length, and whether its predictions depend on that length, per dtype.

Every Jacobi iteration is one forward over the pending token plus the draft and the recycled candidates, so its
wall-clock gain over greedy decoding is TPF × (cost of a one-token forward) / (cost of the iteration's forward). This
script measures that cost curve on the machine it runs on: the median latency of a forward of ``q`` new query tokens
over a KV cache of ``--context`` tokens, and the same for the LM head's matrix product alone. The ratio to ``q = 1``
is the TPF a method must reach just to break even at that query length.

It also checks what losslessness rests on: that a token's greedy prediction does not depend on how many tokens the
forward that computes it holds. For each dtype it decodes ``--prompts`` HumanEval prompts greedily one token at a
time, then recomputes the same positions in chunks of ``q`` tokens (the shape of a verification forward) and counts
the positions whose argmax differs. Where any does, no speculative decoder (Jacobi, prompt lookup, assisted) can be
token-exact with greedy decoding in that dtype on that machine.

    python benchmarks/bench_forward_cost.py --dtypes float32 bfloat16

Writes docs/results/forward_cost.{json,md,png}.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import RESULTS_DIR, humaneval_chat_inputs, line_plot, write_results

from jacobi_forcing_hf import load_default_model

QUERY_LENGTHS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96)


def forward_ms(model, context_ids: torch.Tensor, query_length: int, repeats: int) -> float:
    """Median latency of a forward of ``query_length`` tokens on top of a fresh cache of ``context_ids``."""
    from transformers import DynamicCache

    timings = []
    for _ in range(repeats + 1):  # the first one warms up
        cache = DynamicCache(config=model.config)
        model(context_ids, past_key_values=cache, use_cache=True)
        query = torch.randint(100, model.config.vocab_size - 100, (1, query_length))
        started = time.perf_counter()
        model(query, past_key_values=cache, use_cache=True)
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings[1:])


def lm_head_ms(model, query_length: int, repeats: int) -> float:
    """Median latency of the LM head's matrix product for ``query_length`` hidden states."""
    weight = model.get_output_embeddings().weight
    hidden = torch.randn(query_length, weight.shape[1], dtype=weight.dtype)
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        torch.nn.functional.linear(hidden, weight)
        timings.append(time.perf_counter() - started)
    return 1000 * statistics.median(timings[1:])


def chunked_predictions(model, prompt_ids: torch.Tensor, continuation: list[int], chunk: int) -> torch.Tensor:
    """Logits at every continuation position, computed by forwards of ``chunk`` tokens each (after the prompt)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    logits = [model(prompt_ids, past_key_values=cache, use_cache=True).logits[0, -1:]]
    tokens = torch.tensor([continuation[:-1]])  # the last token's own prediction is not needed
    for start in range(0, tokens.shape[1], chunk):
        logits.append(model(tokens[:, start : start + chunk], past_key_values=cache, use_cache=True).logits[0])
    return torch.cat(logits).float()


def shape_dependence(model, inputs: list[dict], new_tokens: int, chunks: tuple[int, ...]) -> list[dict]:
    """Per chunk length: positions whose argmax differs from one-token-at-a-time decoding, and the largest gap."""
    totals = {chunk: {"positions": 0, "argmax_differs": 0, "max_abs_logit_diff": 0.0} for chunk in chunks}
    for prompt in inputs:
        prompt_ids = prompt["input_ids"]
        greedy = model.generate(**prompt, max_new_tokens=new_tokens, do_sample=False)[0, prompt_ids.shape[1] :]
        continuation = greedy.tolist()
        reference = chunked_predictions(model, prompt_ids, continuation, chunk=1)
        for chunk in chunks:
            logits = chunked_predictions(model, prompt_ids, continuation, chunk)
            total = totals[chunk]
            total["positions"] += len(continuation)
            total["argmax_differs"] += int((logits.argmax(-1) != reference.argmax(-1)).sum())
            total["max_abs_logit_diff"] = max(total["max_abs_logit_diff"], float((logits - reference).abs().max()))
    return [{"chunk": chunk, **total} for chunk, total in totals.items()]


def measure_dtype(dtype: str, args: argparse.Namespace) -> dict:
    model, tokenizer = load_default_model(dtype=getattr(torch, dtype))
    model.eval()
    context = torch.randint(100, model.config.vocab_size - 100, (1, args.context))
    with torch.no_grad():
        one_token = forward_ms(model, context, 1, args.repeats)
        head_one = lm_head_ms(model, 1, args.repeats)
        costs = []
        for query_length in args.query_lengths:
            forward = one_token if query_length == 1 else forward_ms(model, context, query_length, args.repeats)
            head = head_one if query_length == 1 else lm_head_ms(model, query_length, args.repeats)
            costs.append(
                {
                    "query_tokens": query_length,
                    "forward_ms": forward,
                    "break_even_tpf": forward / one_token,
                    "lm_head_ms": head,
                }
            )
            print(f"{dtype} q={query_length}: {forward:.1f} ms ({forward / one_token:.2f}x)", flush=True)
        exactness = shape_dependence(
            model, humaneval_chat_inputs(tokenizer, args.prompts), args.new_tokens, args.chunks
        )
    return {"dtype": dtype, "costs": costs, "exactness": exactness}


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Forward cost by query length, and shape dependence of greedy predictions",
        "",
        f"Embedded SmolLM2-135M-Instruct, KV cache of {args.context} tokens, median of {args.repeats} forwards per "
        "cell. **break-even TPF** = forward ms / one-token forward ms: the tokens per forward a decoding method "
        "needs at that query length to match greedy decoding's tokens/s.",
        "",
        "| dtype | query tokens | forward ms | break-even TPF | LM head matmul ms |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines += [
            f"| {result['dtype']} | {row['query_tokens']} | {row['forward_ms']:.1f} | {row['break_even_tpf']:.2f} | "
            f"{row['lm_head_ms']:.2f} |"
            for row in result["costs"]
        ]
    lines += [
        "",
        f"Shape dependence: {args.prompts} HumanEval prompts decoded greedily for {args.new_tokens} tokens, each "
        "position's logits recomputed by forwards of `chunk` tokens and compared with one-token forwards.",
        "",
        "| dtype | chunk | positions | argmax differs | max abs logit diff |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines += [
            f"| {result['dtype']} | {row['chunk']} | {row['positions']} | {row['argmax_differs']} | "
            f"{row['max_abs_logit_diff']:.3g} |"
            for row in result["exactness"]
        ]
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path) -> None:
    line_plot(
        {
            result["dtype"]: (
                [row["query_tokens"] for row in result["costs"]],
                [row["forward_ms"] for row in result["costs"]],
            )
            for result in results
        },
        path,
        xlabel="query tokens in the forward",
        ylabel="forward latency (ms)",
        title="Forward cost by query length (embedded model)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--query-lengths", type=int, nargs="+", default=list(QUERY_LENGTHS))
    parser.add_argument("--context", type=int, default=300, help="tokens already in the KV cache")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--prompts", type=int, default=4, help="HumanEval prompts of the shape-dependence check")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--name", default="forward_cost")
    args = parser.parse_args()
    if 1 not in args.query_lengths:
        parser.error("--query-lengths must include 1 (the greedy step every ratio is taken against)")
    args.chunks = tuple(args.chunks)
    results = [measure_dtype(dtype, args) for dtype in args.dtypes]
    write_results(
        args.name,
        {"settings": {k: v for k, v in vars(args).items() if k != "name"}, "results": results},
        markdown(results, args),
    )
    plot(results, RESULTS_DIR / f"{args.name}.png")


if __name__ == "__main__":
    main()
