"""What one forward costs by query length, and whether its predictions depend on that length, per variant.

Every Jacobi iteration is one forward over the pending token plus the draft and the recycled candidates, so its
wall-clock gain over greedy decoding is TPF × (cost of a one-token forward) / (cost of the iteration's forward). This
script measures that cost curve on the machine it runs on: the median latency of a forward of ``q`` new query tokens
over a KV cache of ``--context`` tokens (cropped back after each forward), and the same for the LM head alone. The
variants take turns forward by forward. The ratio to ``q = 1`` is the TPF a method must reach just to break even at
that query length.

It also checks what losslessness rests on: that a token's greedy prediction does not depend on how many tokens the
forward that computes it holds. For each variant it decodes ``--prompts`` HumanEval prompts greedily one token at a
time, then recomputes the same positions in chunks of ``q`` tokens (the shape of a verification forward) and counts
the positions whose argmax differs. Where any does, no speculative decoder (Jacobi, prompt lookup, assisted) can be
token-exact with greedy decoding in that variant on that machine.

Variants: ``float32`` and ``bfloat16`` as loaded, and ``float32-onednn``: float32 with the linear layers computed by
oneDNN (``jacobi_forcing_hf.use_onednn_linear``).

    python benchmarks/bench_forward_cost.py --variants float32 float32-onednn bfloat16

Writes docs/results/forward_cost.{json,md,png}.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from common import RESULTS_DIR, humaneval_chat_inputs, line_plot, write_results

from jacobi_forcing_hf.evaluation.loading import EMBEDDED, load_model, load_tokenizer

VARIANTS = ("float32", "float32-onednn", "bfloat16")
QUERY_LENGTHS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96)


def forward_ms(models: dict, context_ids: torch.Tensor, query_length: int, repeats: int) -> dict[str, float]:
    """Per model, the median latency of a forward of ``query_length`` tokens on top of a KV cache of
    ``context_ids``, cropped back after each forward as decoding does. The models take turns forward by forward,
    so a change of machine load hits them alike."""
    from transformers import DynamicCache

    caches = {}
    for name, model in models.items():
        caches[name] = DynamicCache(config=model.config)
        model(context_ids, past_key_values=caches[name], use_cache=True)
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats + 1):  # the first round warms up
        query = torch.randint(100, 40_000, (1, query_length))
        for name, model in models.items():
            started = time.perf_counter()
            model(query, past_key_values=caches[name], use_cache=True)
            timings[name].append(time.perf_counter() - started)
            caches[name].crop(-query_length)
    return {name: 1000 * statistics.median(values[1:]) for name, values in timings.items()}


def lm_head_ms(models: dict, query_length: int, repeats: int) -> dict[str, float]:
    """Per model, the median latency of its LM head for ``query_length`` hidden states (models taking turns)."""
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats + 1):
        for name, model in models.items():
            hidden = torch.randn(query_length, model.config.hidden_size, dtype=model.dtype)
            started = time.perf_counter()
            model.get_output_embeddings()(hidden)
            timings[name].append(time.perf_counter() - started)
    return {name: 1000 * statistics.median(values[1:]) for name, values in timings.items()}


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


def load_variant(variant: str):
    """(model, tokenizer) of ``variant``: a dtype, with ``-onednn`` its linear layers converted."""
    dtype = variant.removesuffix("-onednn")
    model = load_model(EMBEDDED, dtype=dtype, onednn_linear=variant.endswith("-onednn"))
    return model, load_tokenizer(EMBEDDED)


def measure(args: argparse.Namespace) -> list[dict]:
    """Latency curves of every variant, measured side by side, then each variant's shape dependence."""
    loaded = {variant: load_variant(variant) for variant in args.variants}
    models = {variant: model for variant, (model, _) in loaded.items()}
    context = torch.randint(100, 40_000, (1, args.context))
    costs: dict[str, list[dict]] = {variant: [] for variant in models}
    with torch.no_grad():
        for query_length in args.query_lengths:
            forwards = forward_ms(models, context, query_length, args.repeats)
            heads = lm_head_ms(models, query_length, args.repeats)
            for variant in models:
                costs[variant].append({"query_tokens": query_length, "forward_ms": forwards[variant]})
                costs[variant][-1]["lm_head_ms"] = heads[variant]
            print(f"q={query_length}: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in forwards.items()), flush=True)
        results = []
        for variant, (model, tokenizer) in loaded.items():
            one_token = costs[variant][0]["forward_ms"]
            for row in costs[variant]:
                row["break_even_tpf"] = row["forward_ms"] / one_token
            inputs = humaneval_chat_inputs(tokenizer, args.prompts)
            exactness = shape_dependence(model, inputs, args.new_tokens, args.chunks)
            results.append({"variant": variant, "costs": costs[variant], "exactness": exactness})
    return results


def markdown(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Forward cost by query length, and shape dependence of greedy predictions",
        "",
        f"Embedded SmolLM2-135M-Instruct, KV cache of {args.context} tokens, median of {args.repeats} forwards per "
        "cell, the variants taking turns forward by forward and each cache cropped back after every forward. "
        "**break-even TPF** = forward ms / one-token forward ms: the tokens per forward a decoding method needs at "
        "that query length to match greedy decoding's tokens/s.",
        "",
        "| variant | query tokens | forward ms | break-even TPF | LM head matmul ms |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines += [
            f"| {result['variant']} | {row['query_tokens']} | {row['forward_ms']:.1f} | {row['break_even_tpf']:.2f} | "
            f"{row['lm_head_ms']:.2f} |"
            for row in result["costs"]
        ]
    lines += [
        "",
        f"Shape dependence: {args.prompts} HumanEval prompts decoded greedily for {args.new_tokens} tokens, each "
        "position's logits recomputed by forwards of `chunk` tokens and compared with one-token forwards.",
        "",
        "| variant | chunk | positions | argmax differs | max abs logit diff |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines += [
            f"| {result['variant']} | {row['chunk']} | {row['positions']} | {row['argmax_differs']} | "
            f"{row['max_abs_logit_diff']:.3g} |"
            for row in result["exactness"]
        ]
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path) -> None:
    line_plot(
        {
            result["variant"]: (
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
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--query-lengths", type=int, nargs="+", default=list(QUERY_LENGTHS))
    parser.add_argument("--context", type=int, default=300, help="tokens already in the KV cache")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--prompts", type=int, default=4, help="HumanEval prompts of the shape-dependence check")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--name", default="forward_cost")
    args = parser.parse_args()
    if 1 not in args.query_lengths:
        parser.error("--query-lengths must include 1 (the greedy step every ratio is taken against)")
    args.chunks = tuple(args.chunks)
    args.query_lengths = sorted(set(args.query_lengths))  # 1 first: every ratio is taken against it
    results = measure(args)
    write_results(
        args.name,
        {"settings": {k: v for k, v in vars(args).items() if k != "name"}, "results": results},
        markdown(results, args),
    )
    plot(results, RESULTS_DIR / f"{args.name}.png")


if __name__ == "__main__":
    main()
