"""oneDNN linear layers for CPU inference: the same float32 model, faster matrix products for short queries.

On x86 CPUs PyTorch computes ``nn.Linear`` with MKL. For the few-token queries of decoding that path is slow where
Jacobi decoding needs it to be fast: on the embedded SmolLM2-135M (2-core AMD EPYC, float32) a forward of 2 query
tokens costs 1.6× a forward of 1, and the 49k-row LM head alone takes 2.3× longer for 2 rows than for 1. oneDNN's
matrix product (the library PyTorch also ships) keeps that step small, so both greedy decoding and Jacobi decoding
get faster, Jacobi decoding more (``docs/results/forward_cost_onednn.md``, ``docs/results/bench_embedded_onednn*``).

``use_onednn_linear(model)`` swaps every ``nn.Linear`` of a float32 CPU model for a frozen ``OneDNNLinear`` holding
its weight in oneDNN's layout. The numbers stay float32; only the summation order inside the products changes, so
logits move in the last bits (as they do between any two BLAS libraries). Greedy and Jacobi decoding of the
converted model are compared with each other, as always: the exactness guarantee is about the model that runs.

The converted model is for inference only: the swapped layers hold buffers, not parameters, and every remaining
parameter is frozen. Keep the original to train or save.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class OneDNNLinear(nn.Module):
    """A frozen copy of an ``nn.Linear`` whose weight lives in oneDNN's tensor layout."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer("onednn_weight", linear.weight.detach().to_mkldnn(), persistent=False)
        bias = None if linear.bias is None else linear.bias.detach().to_mkldnn()
        self.register_buffer("onednn_bias", bias, persistent=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        product = torch.ops.aten.mkldnn_linear(hidden.contiguous().to_mkldnn(), self.onednn_weight, self.onednn_bias)
        return product.to_dense()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.onednn_bias is not None}"


def use_onednn_linear(model: nn.Module) -> nn.Module:
    """Swap every ``nn.Linear`` of ``model`` for a ``OneDNNLinear`` (in place) and freeze the rest; returns it.

    Example:
        >>> model = use_onednn_linear(model)  # doctest: +SKIP
        >>> model.generate(**inputs, decoding="jacobi_mr", block_size=4, pool_size=8, do_sample=False)  # doctest: +SKIP

    Raises:
        RuntimeError: this PyTorch build has no oneDNN.
        ValueError: a linear layer that is not float32 on the CPU (bfloat16 is refused on purpose: on CPUs its
            results depend on the query length, so no speculative decoder can match greedy decoding there), or a
            model without linear layers.
    """
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("use_onednn_linear needs a PyTorch build with oneDNN (mkldnn); this one has none.")
    linears = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear)
    ]
    if not linears:
        raise ValueError("use_onednn_linear: the model has no nn.Linear layer to convert.")
    for _, name, linear in linears:
        placement = (linear.weight.device.type, linear.weight.dtype)
        if placement != ("cpu", torch.float32):
            raise ValueError(
                f"use_onednn_linear converts float32 layers on the CPU; layer {name!r} is {linear.weight.dtype} "
                f"on {linear.weight.device}. Load the model with dtype=torch.float32 on the CPU."
            )
    for parent, name, linear in linears:
        setattr(parent, name, OneDNNLinear(linear))
    model.requires_grad_(False)
    return model.eval()


def uses_onednn_linear(model: Any) -> bool:
    """Whether ``use_onednn_linear`` converted ``model``."""
    return isinstance(model, nn.Module) and any(isinstance(module, OneDNNLinear) for module in model.modules())
