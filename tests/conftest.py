"""Fixtures shared by every test module: tiny random models of many architectures and the embedded model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# Test helper modules (tiny_models, char_tokenizer, fake_hub, ...) are imported by name from their folders; tests are
# collected with --import-mode=importlib, so that conftest.py files of different folders never clash.
_TESTS = Path(__file__).parent
for _folder in [_TESTS, *sorted(p for p in _TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))]:
    sys.path.insert(0, str(_folder))

from tiny_models import ARCHITECTURES, build_tiny_model  # noqa: E402  (needs the sys.path entries above)

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(params=ARCHITECTURES)
def tiny_model(request):
    """One tiny random model per architecture (the test runs once for each)."""
    return build_tiny_model(request.param)


@pytest.fixture(scope="session")
def char_tokenizer():
    """The one-token-per-character tokenizer of ``tests/data/char_tokenizer.py`` (matches the tiny models' vocab)."""
    from char_tokenizer import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def llama_tiny():
    """A single tiny Llama, for tests that exercise one code path rather than every architecture."""
    return build_tiny_model("llama")


@pytest.fixture(scope="session")
def embedded_model():
    """The embedded SmolLM2-135M-Instruct (model, tokenizer), loaded once per test session."""
    from jacobi_forcing_hf import load_default_model

    return load_default_model()
