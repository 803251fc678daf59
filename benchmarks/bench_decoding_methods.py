"""Decoding methods side by side on the embedded model: greedy, jacobi (n = 8, 16, 32), jacobi_mr (package defaults
and the reference's n=64 K=2 pool=4 r=0.85) and transformers' prompt lookup, on the same HumanEval prompts.

Uses the evaluation harness's measurement (forward hook counting, prefill included; wall time of the whole generate
call; the HumanEval chat prompt of ``jacobi-forcing eval``). For each prompt the variants run interleaved, so load
changes hit all of them alike; speed-ups are ratios to greedy's tokens/s from the same run.

    python benchmarks/bench_decoding_methods.py --prompts 20 --max-new-tokens 128
"""

from __future__ import annotations

import argparse

import torch
from common import write_results

from jacobi_forcing_hf import load_default_model
from jacobi_forcing_hf.evaluation.prompting import encode_prompt
from jacobi_forcing_hf.evaluation.speed import JacobiKnobs, MethodSettings, generate_measured, prepare_model, summarize
from jacobi_forcing_hf.evaluation.tasks import get_task

# label -> (method, knobs); knobs left out take the package defaults
VARIANTS: dict[str, tuple[str, dict]] = {
    "greedy": ("greedy", {}),
    "prompt lookup (10 tokens)": ("prompt_lookup", {}),
    "jacobi n=8": ("jacobi", {"block_size": 8}),
    "jacobi n=16": ("jacobi", {"block_size": 16}),
    "jacobi n=32": ("jacobi", {"block_size": 32}),
    "jacobi_mr (package defaults)": ("jacobi_mr", {}),
    "jacobi_mr n=64 K=2 pool=4 r=0.85 (reference)": (
        "jacobi_mr",
        {"block_size": 64, "num_blocks": 2, "pool_size": 4, "activation_ratio": 0.85},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--name", default="decoding_methods", help="stem of the files written into docs/results/")
    args = parser.parse_args()

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    prepare_model(model, ["greedy", "jacobi", "jacobi_mr", "prompt_lookup"])
    problems = get_task("humaneval").load_problems(limit=args.prompts, chat=True)
    settings = {
        label: MethodSettings(args.max_new_tokens, JacobiKnobs(**knobs).resolved(model.generation_config))
        for label, (_, knobs) in VARIANTS.items()
        if label in args.variants or label == "greedy"
    }
    warm = encode_prompt(tokenizer, problems[0].prompt, chat=True)
    for label, setting in settings.items():
        generate_measured(model, warm, VARIANTS[label][0], MethodSettings(8, setting.knobs))
    records: dict[str, list[dict]] = {label: [] for label in settings}
    for index, problem in enumerate(problems):
        inputs = encode_prompt(tokenizer, problem.prompt, chat=True)
        greedy_tokens = None
        for label, setting in settings.items():
            measured = generate_measured(model, inputs, VARIANTS[label][0], setting)
            record = {
                "new_tokens": len(measured.token_ids),
                "forwards": measured.forwards,
                "seconds": measured.seconds,
                "stopped_at_eos": measured.stopped_at_eos,
            }
            if greedy_tokens is None:
                greedy_tokens = measured.token_ids
            record["matches_greedy"] = measured.token_ids == greedy_tokens
            records[label].append(record)
        print(f"prompt {index + 1}/{len(problems)} done", flush=True)

    greedy_speed = summarize(records["greedy"])["tokens_per_s"]
    rows = [{"variant": label, **summarize(rows, greedy_speed)} for label, rows in records.items()]
    table = [
        "| variant | TPF | tokens/s | speed-up vs greedy | same tokens as greedy |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        table.append(
            f"| {row['variant']} | {row['tpf']:.2f} | {row['tokens_per_s']:.1f} | {row['speedup']:.2f}x | "
            f"{row['matches_greedy']}/{row['prompts']} |"
        )
    markdown = (
        f"Embedded SmolLM2-135M-Instruct (fp32, not Jacobi-trained), first {len(problems)} HumanEval prompts "
        f"(chat template), {args.max_new_tokens} new tokens, batch 1. TPF = new tokens / model forwards, prefill "
        "counted (greedy = 1.00); tokens/s over the whole generate call.\n\n" + "\n".join(table) + "\n"
    )
    print(markdown)
    write_results(
        args.name,
        {"prompts": len(problems), "max_new_tokens": args.max_new_tokens, "variants": VARIANTS, "rows": rows},
        markdown,
    )


if __name__ == "__main__":
    main()
