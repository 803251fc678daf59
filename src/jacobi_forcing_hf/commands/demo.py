"""``jacobi-forcing demo``: the embedded model answers a prompt, with speed figures."""

from __future__ import annotations

import argparse

DEFAULT_PROMPT = "Write a Python function that returns the n-th Fibonacci number."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="answer a prompt with the embedded SmolLM2 model")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="user message sent through the chat template")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens to generate")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..models import load_default_model

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    messages = [{"role": "user", "content": args.prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    start = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False)
    elapsed = time.perf_counter() - start
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    print(tokenizer.decode(new_tokens, skip_special_tokens=True))
    print(f"\ngreedy: {len(new_tokens)} tokens in {elapsed:.2f} s = {len(new_tokens) / elapsed:.1f} tokens/s")
    return 0
