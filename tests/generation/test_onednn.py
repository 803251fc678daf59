"""oneDNN linear layers: the converted model computes the same function, and Jacobi decoding of it stays exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from jacobi_forcing_hf import enable_jacobi, use_onednn_linear
from jacobi_forcing_hf.evaluation.speed import model_placement
from jacobi_forcing_hf.onednn import OneDNNLinear, uses_onednn_linear
from tiny_models import build_tiny_model, random_prompts

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="this torch build has no oneDNN")


def _linear_count(model: nn.Module) -> int:
    return sum(isinstance(module, nn.Linear) for module in model.modules())


@pytest.mark.parametrize("arch", ["llama", "qwen3", "phi3"])
def test_converted_model_computes_the_same_logits(arch):
    original = build_tiny_model(arch)
    linears = _linear_count(original)
    converted = use_onednn_linear(build_tiny_model(arch))
    assert _linear_count(converted) == 0
    assert sum(isinstance(module, OneDNNLinear) for module in converted.modules()) == linears
    assert not any(parameter.requires_grad for parameter in converted.parameters())
    assert uses_onednn_linear(converted) and not uses_onednn_linear(original)
    prompt = random_prompts(2, 12, seed=5)
    with torch.no_grad():
        expected = original(prompt).logits
        logits = converted(prompt).logits
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "setting",
    [{"decoding": "jacobi", "block_size": 4}, {"decoding": "jacobi_mr", "block_size": 6, "pool_size": 8}],
    ids=["jacobi", "jacobi_mr"],
)
def test_jacobi_decoding_of_the_converted_model_equals_its_greedy_output(setting, greedy):
    model = enable_jacobi(use_onednn_linear(build_tiny_model("llama")))
    prompt = random_prompts(1, 10, seed=3)
    expected = greedy(model, prompt, max_new_tokens=40)
    with torch.inference_mode():
        output = model.generate(prompt, do_sample=False, max_new_tokens=40, **setting)
    assert torch.equal(output, expected)
    assert model.jacobi_stats.forwards < expected.shape[1] - prompt.shape[1]


def test_placement_records_the_onednn_kernels():
    model = build_tiny_model("llama")
    assert model_placement(model) == {"dtype": "float32", "device": "cpu"}
    assert model_placement(use_onednn_linear(model)) == {"dtype": "float32", "device": "cpu", "linear": "onednn"}


def test_non_float32_layers_are_refused_before_any_layer_is_swapped():
    model = build_tiny_model("llama").to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"float32 layers on the CPU.*bfloat16"):
        use_onednn_linear(model)
    assert not uses_onednn_linear(model)


def test_a_model_without_linear_layers_is_refused():
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        use_onednn_linear(nn.Sequential(nn.Embedding(4, 2)))
