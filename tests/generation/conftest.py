"""Fixtures of the decoding tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def greedy():
    """greedy(model, input_ids, **kwargs): transformers' own greedy generate (no Jacobi decoding)."""

    def run(model, input_ids, **kwargs):
        with torch.inference_mode():
            return model.generate(input_ids, do_sample=False, **kwargs)

    return run
