"""Fixtures of the evaluation tests: the character tokenizer and a tiny Llama saved with it as a model folder
(what the CLI loads)."""

from __future__ import annotations

import pytest
from evaluation_helpers import build_char_tokenizer

from tiny_models import build_tiny_model


@pytest.fixture(scope="session")
def char_tokenizer():
    return build_char_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, char_tokenizer):
    """A tiny Llama and the character tokenizer saved together, as a model folder for the CLI."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = build_tiny_model("llama")
    model.generation_config._from_model_config = False
    model.save_pretrained(folder)
    char_tokenizer.save_pretrained(folder)
    return folder
