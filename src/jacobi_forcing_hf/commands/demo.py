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
    for knob in ("block_size", "num_blocks", "pool_size"):
        flag = "--" + knob.replace("_", "-")
        parser.add_argument(flag, type=int, help=f"Jacobi knob {knob} (default: the CPU recipe, docs/decoding.md)")
    parser.add_argument(
        "--onednn-linear",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compute the linear layers with oneDNN, for both methods (default: when this torch build has it)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time

    import torch

    from ..generation.config import CPU_KNOBS
    from ..models import load_default_model

    torch.manual_seed(0)
    model, tokenizer = load_default_model()
    onednn = torch.backends.mkldnn.is_available() if args.onednn_linear is None else args.onednn_linear
    if onednn:
        from ..onednn import use_onednn_linear

        use_onednn_linear(model)
    messages = [{"role": "user", "content": args.prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    prompt_length = inputs["input_ids"].shape[1]
    knobs = {knob: value if getattr(args, knob) is None else getattr(args, knob) for knob, value in CPU_KNOBS.items()}
    jacobi = {"decoding": args.decoding, **knobs}
    methods = {"greedy": {}, args.decoding: jacobi}
    with torch.inference_mode():
        for extra in methods.values():  # unmeasured warm-up: first-call costs must not count against either method
            model.generate(**inputs, max_new_tokens=8, do_sample=False, **extra)
    results = {}
    for label, extra in methods.items():
        forwards = []
        handle = model.register_forward_pre_hook(lambda *_, calls=forwards: calls.append(1))
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=False, **extra)
        elapsed = time.perf_counter() - start
        handle.remove()
        results[label] = (output[0, prompt_length:].tolist(), len(forwards), elapsed)

    greedy_tokens = results["greedy"][0]
    print(tokenizer.decode(greedy_tokens, skip_special_tokens=True))
    print()
    kernels = "oneDNN" if onednn else "PyTorch's default"
    print(f"float32 on the CPU, {kernels} linear kernels for both methods; {args.decoding} with {jacobi}")
    print(f"{'method':<12}{'tokens':>8}{'forwards':>10}{'TPF':>8}{'tokens/s':>10}")
    for label, (tokens, forwards, elapsed) in results.items():
        print(f"{label:<12}{len(tokens):>8}{forwards:>10}{len(tokens) / forwards:>8.2f}{len(tokens) / elapsed:>10.1f}")
    identical = results[args.decoding][0] == greedy_tokens
    print(f"\n{args.decoding} tokens identical to greedy: {identical}")
    return 0 if identical else 1
