"""``jacobi-forcing demo``: the embedded model answers a coding prompt with greedy and Jacobi decoding side by side."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_PROMPT = (
    "Write a Python function `count_vowels(text: str) -> int` that returns the number of vowels in `text`, "
    "with a docstring and two doctest examples."
)


MODELS = ("jacobi-forcing", "base")
# the knobs of generation.config.CPU_KNOBS, each a flag (named here: importing the engine would slow every CLI start)
KNOB_FLAGS = ("block_size", "num_blocks", "pool_size", "draft_alternatives", "copy_length")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="base greedy vs the Jacobi Forcing model's jacobi_mr on the embedded SmolLM2: same text, fewer forwards",
    )
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="user message sent through the chat template")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="tokens to generate")
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="jacobi-forcing",
        help="the model decoded with Jacobi: the shipped Jacobi Forcing model (default) or the untrained base",
    )
    parser.add_argument("--decoding", default="jacobi_mr", choices=["jacobi", "jacobi_mr"], help="Jacobi method")
    for knob in KNOB_FLAGS:
        flag = "--" + knob.replace("_", "-")
        parser.add_argument(flag, type=int, help=f"Jacobi knob {knob} (default: the CPU recipe, docs/decoding.md)")
    parser.add_argument(
        "--onednn-linear",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compute linear layers with oneDNN, for every model and method (default: when this torch build has it)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Decode the prompt with the base model's greedy decoding, then with the chosen model's greedy and Jacobi
    decoding; print the text, a table of tokens, forwards, TPF and tokens/s, and whether Jacobi was lossless."""
    import torch

    from ..generation.config import CPU_KNOBS
    from ..models import load_default_model

    torch.manual_seed(0)
    onednn = torch.backends.mkldnn.is_available() if args.onednn_linear is None else args.onednn_linear
    base, tokenizer = load_default_model()
    models = {"base": base}
    if args.model == "jacobi-forcing":
        models[args.model] = load_default_model(jacobi_forcing=True)[0]
    if onednn:
        from ..onednn import use_onednn_linear

        for each in models.values():
            use_onednn_linear(each)
    messages = [{"role": "user", "content": args.prompt}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    knobs = {knob: value if getattr(args, knob) is None else getattr(args, knob) for knob, value in CPU_KNOBS.items()}
    jacobi = {"decoding": args.decoding, **knobs}
    runs = [("base", "greedy", {})]
    if args.model != "base":  # the chosen model's own greedy text is what its Jacobi decoding must reproduce
        runs.append((args.model, "greedy", {}))
    runs.append((args.model, args.decoding, jacobi))
    with torch.inference_mode():
        for name, _, extra in runs:  # unmeasured warm-up: first-call costs must not count against any run
            models[name].generate(**inputs, max_new_tokens=8, do_sample=False, **extra)
    results = {
        (name, method): _timed_generate(models[name], inputs, args.max_new_tokens, extra)
        for name, method, extra in runs
    }

    print(tokenizer.decode(results[(args.model, args.decoding)][0], skip_special_tokens=True))
    print()
    kernels = "oneDNN" if onednn else "PyTorch's default"
    table = getattr(models[args.model].generation_config, "ngram_table", None)  # the shipped model's own
    print(f"float32 on the CPU, {kernels} linear kernels for every run; {args.decoding} with {jacobi}")
    print(f"n-gram table from the generation config: {table or 'none'}")
    print(f"{'model':<16}{'method':<12}{'tokens':>8}{'forwards':>10}{'TPF':>8}{'tokens/s':>10}")
    for (name, method), (tokens, forwards, elapsed) in results.items():
        print(
            f"{name:<16}{method:<12}{len(tokens):>8}{forwards:>10}{len(tokens) / forwards:>8.2f}"
            f"{len(tokens) / elapsed:>10.1f}"
        )
    tokens, _, elapsed = results[(args.model, args.decoding)]
    base_tokens, _, base_elapsed = results[("base", "greedy")]
    speedup = (len(tokens) / elapsed) / (len(base_tokens) / base_elapsed)
    print(f"\n{args.model} {args.decoding}: {speedup:.2f}x the tokens/s of base greedy")
    identical = tokens == results[(args.model, "greedy")][0]
    print(f"{args.decoding} tokens identical to {args.model} greedy: {identical}")
    return 0 if identical else 1


def _timed_generate(model: Any, inputs: Any, max_new_tokens: int, extra: dict) -> tuple[list[int], int, float]:
    """Greedy ``generate`` with ``extra`` kwargs: (new tokens, model forwards, seconds)."""
    import time

    import torch

    forwards: list[int] = []
    handle = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, **extra)
    finally:
        handle.remove()
    return output[0, inputs["input_ids"].shape[1] :].tolist(), len(forwards), time.perf_counter() - start
