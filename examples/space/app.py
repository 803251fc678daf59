"""Greedy vs Jacobi decoding, side by side: a Gradio app for a Hugging Face Space (or your machine).

Both runs decode the same prompt greedily; Jacobi decoding (``decoding="jacobi_mr"``: multiblock + rejection
recycling) must give exactly the same text in fewer forward passes. The app shows both texts, whether they are
identical, and for each method the forward passes (counted the same way for both), tokens per forward (TPF)
and tokens per second of this single run.

The model is ``$JACOBI_SPACE_MODEL`` (a Hub id or a local folder, e.g. a checkpoint pushed with
``jacobi-forcing push checkpoint``) or, when unset, the embedded SmolLM2-135M-Instruct of ``jacobi-forcing-hf`` with
the package's Jacobi Forcing adapter merged (``load_default_model(jacobi_forcing=True)``).
On a CPU both methods run with oneDNN linear kernels (``jacobi_forcing_hf.use_onednn_linear``), and the sliders
start at the CPU knobs unless the model's generation config sets its own.

Run locally:  python examples/space/app.py   (then open http://127.0.0.1:7860)
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr
import torch

import jacobi_forcing_hf as jf
from jacobi_forcing_hf.generation.config import CPU_KNOBS

MODEL_ENV_VAR = "JACOBI_SPACE_MODEL"
DEFAULT_PROMPT = "Write a Python function that checks whether a number is prime."
STATS_HEADERS = ["method", "forwards", "new tokens", "tokens per forward", "tokens/s", "seconds"]


def load_model(name: str | None = None):
    """``(model, tokenizer)`` of ``name`` (Hub id or folder), else the embedded Jacobi Forcing model; ready for
    Jacobi."""
    name = name or os.environ.get(MODEL_ENV_VAR)
    if name:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch.float32).eval()
    else:
        model, tokenizer = jf.load_default_model(jacobi_forcing=True)
    return prepare_for_cpu(jf.enable_jacobi(model)), tokenizer


def prepare_for_cpu(model):
    """On a CPU: oneDNN linear kernels for both methods, and the CPU knobs as the sliders' defaults unless the model
    brings its own (a Jacobi Forcing checkpoint was trained at its block size). Elsewhere: the model unchanged."""
    if model.device.type != "cpu":
        return model
    if torch.backends.mkldnn.is_available() and model.dtype == torch.float32:
        jf.use_onednn_linear(model)
    for knob, value in CPU_KNOBS.items():
        if getattr(model.generation_config, knob, None) is None:
            setattr(model.generation_config, knob, value)
    return model


@contextlib.contextmanager
def count_forwards(model: torch.nn.Module) -> Iterator[list[int]]:
    """Count calls of ``model``'s forward inside the block: one definition of a forward for every method."""
    counter = [0]
    handle = model.register_forward_pre_hook(lambda module, args: counter.__setitem__(0, counter[0] + 1))
    try:
        yield counter
    finally:
        handle.remove()


@dataclass
class Run:
    """One decoding of the prompt."""

    method: str
    new_token_ids: list[int]
    forwards: int
    seconds: float

    def row(self) -> list:
        count = len(self.new_token_ids)
        return [
            self.method,
            self.forwards,
            count,
            round(count / self.forwards, 2) if self.forwards else 0.0,
            round(count / self.seconds, 1) if self.seconds else 0.0,
            round(self.seconds, 2),
        ]


def _encode(tokenizer, prompt: str) -> dict[str, torch.Tensor]:
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    return tokenizer(prompt, return_tensors="pt")


def _decode_once(model, inputs: dict, method: str, **generate_kwargs) -> Run:
    with torch.inference_mode(), count_forwards(model) as forwards:
        start = time.perf_counter()
        output = model.generate(**inputs, **generate_kwargs)
        seconds = time.perf_counter() - start
    new_token_ids = output[0, inputs["input_ids"].shape[1] :].tolist()
    return Run(method, new_token_ids, forwards[0], seconds)


def compare(
    model,
    tokenizer,
    prompt: str,
    block_size: int,
    num_blocks: int,
    pool_size: int,
    activation_ratio: float,
    max_new_tokens: int,
) -> tuple[str, str, str, dict]:
    """Decode ``prompt`` greedily and with ``jacobi_mr``; return both texts, the verdict and the stats table."""
    if not prompt.strip():
        raise gr.Error("Type a prompt first.")
    inputs = _encode(tokenizer, prompt)
    plain_config = copy.deepcopy(model.generation_config)
    plain_config.decoding = None  # a pushed Jacobi model defaults to Jacobi decoding; the baseline must not
    plain_config.do_sample, plain_config.max_new_tokens = False, int(max_new_tokens)
    greedy = _decode_once(model, inputs, "greedy", generation_config=plain_config)
    jacobi = _decode_once(
        model,
        inputs,
        "jacobi_mr",
        decoding="jacobi_mr",
        do_sample=False,
        max_new_tokens=int(max_new_tokens),
        block_size=int(block_size),
        num_blocks=int(num_blocks),
        pool_size=int(pool_size),
        activation_ratio=float(activation_ratio),
    )
    if greedy.new_token_ids == jacobi.new_token_ids:
        verdict = "✅ **Identical** token for token: Jacobi decoding is lossless."
    else:
        first = next(
            (i for i, (a, b) in enumerate(zip(greedy.new_token_ids, jacobi.new_token_ids)) if a != b),
            min(len(greedy.new_token_ids), len(jacobi.new_token_ids)),
        )
        verdict = f"❌ **Different** from new token {first} on."
    speedup = greedy.forwards / jacobi.forwards if jacobi.forwards else 0.0
    verdict += f" Jacobi used {speedup:.2f}× fewer forward passes."
    texts = [tokenizer.decode(run.new_token_ids, skip_special_tokens=True) for run in (greedy, jacobi)]
    return texts[0], texts[1], verdict, {"headers": STATS_HEADERS, "data": [greedy.row(), jacobi.row()]}


def build_demo(model, tokenizer) -> gr.Blocks:
    """The Gradio app around ``model`` (prepared with ``enable_jacobi``) and ``tokenizer``.

    The sliders start at the model's own Jacobi defaults (its ``generation_config``), else the engine's.
    """
    defaults = jf.JacobiConfig.resolve(model.generation_config)

    def run(prompt, block_size, num_blocks, pool_size, activation_ratio, max_new_tokens):
        return compare(model, tokenizer, prompt, block_size, num_blocks, pool_size, activation_ratio, max_new_tokens)

    with gr.Blocks(title="Jacobi decoding vs greedy") as demo:
        gr.Markdown(
            "# Jacobi decoding vs greedy\n"
            'The same prompt, decoded greedily and with Jacobi decoding (`decoding="jacobi_mr"`: several blocks '
            "in flight plus rejection recycling). The texts must be identical; Jacobi needs fewer forward passes. "
            "Speeds are of this single run on this machine."
        )
        prompt = gr.Textbox(label="Prompt", value=DEFAULT_PROMPT, lines=3)
        with gr.Row():
            block_size = gr.Slider(2, 64, value=defaults.block_size, step=1, label="block size n")
            num_blocks = gr.Slider(1, 4, value=defaults.num_blocks, step=1, label="blocks in flight K")
            pool_size = gr.Slider(0, 16, value=defaults.pool_size, step=1, label="recycling pool size")
            activation_ratio = gr.Slider(0.05, 1.0, value=defaults.activation_ratio, step=0.05, label="spawn ratio r")
            max_new_tokens = gr.Slider(1, 512, value=128, step=1, label="max new tokens")
        button = gr.Button("Decode both", variant="primary")
        verdict = gr.Markdown()
        with gr.Row():
            greedy_text = gr.Textbox(label="greedy", lines=12)
            jacobi_text = gr.Textbox(label="jacobi_mr", lines=12)
        stats = gr.Dataframe(headers=STATS_HEADERS, label="statistics", interactive=False)
        button.click(
            run,
            inputs=[prompt, block_size, num_blocks, pool_size, activation_ratio, max_new_tokens],
            outputs=[greedy_text, jacobi_text, verdict, stats],
            api_name="compare",
        )
    return demo


if __name__ == "__main__":
    build_demo(*load_model()).launch()
