"""``jacobi-forcing demo``: the embedded model answers a coding prompt with greedy and Jacobi decoding side by side."""

from __future__ import annotations

import argparse

DEFAULT_PROMPT = (
    "Write a Python function `count_vowels(text: str) -> int` that returns the number of vowels in `text`, "
    "with a docstring and two doctest examples."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="greedy vs Jacobi decoding on the embedded SmolLM2 model: same text, fewer forwards"
    )
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="user message sent through the chat template")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens to generate")
    parser.add_argument("--decoding", default="jacobi_mr", choices=["jacobi", "jacobi_mr"], help="Jacobi method")
    parser.add_argument("--block-size", type=int, default=None, help="n (default: the package default)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..models import load_default_model

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    messages = [{"role": "user", "content": args.prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    prompt_length = inputs["input_ids"].shape[1]
    jacobi = {"decoding": args.decoding, "block_size": args.block_size}
    results = {}
    for label, extra in (("greedy", {}), (args.decoding, jacobi)):
        forwards = []
        handle = model.register_forward_pre_hook(lambda *_, calls=forwards: calls.append(1))
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False, **extra)
        elapsed = time.perf_counter() - start
        handle.remove()
        new_tokens = output[0, prompt_length:]
        results[label] = (
            tokenizer.decode(new_tokens, skip_special_tokens=True),
            len(new_tokens),
            len(forwards),
            elapsed,
        )

    greedy_text = results["greedy"][0]
    print(greedy_text)
    print()
    print(f"{'method':<12}{'tokens':>8}{'forwards':>10}{'TPF':>8}{'tokens/s':>10}")
    for label, (_, tokens, forwards, elapsed) in results.items():
        print(f"{label:<12}{tokens:>8}{forwards:>10}{tokens / forwards:>8.2f}{tokens / elapsed:>10.1f}")
    identical = results[args.decoding][0] == greedy_text
    print(f"\n{args.decoding} text identical to greedy: {identical}")
    return 0 if identical else 1
