"""Fixtures of the data tests."""

from __future__ import annotations

import pytest
from char_tokenizer import build_char_tokenizer
from transformers import PreTrainedTokenizerFast


@pytest.fixture(scope="session")
def char_tokenizer() -> PreTrainedTokenizerFast:
    return build_char_tokenizer()
