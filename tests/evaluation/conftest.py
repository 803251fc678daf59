"""Fixtures of the evaluation tests: a character tokenizer matching the tiny models' 128-token vocabulary, and
a
tiny Llama saved with it as a model folder (what the CLI loads)."""

from __future__ import annotations

import string
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, VOCAB_SIZE, build_tiny_model

FIXTURES = Path(__file__).parent / "fixtures"


def build_char_tokenizer():
    """A character-level fast tokenizer: ids 0-2 are pad, eos, bos; then printable ASCII (< 128 ids)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    specials = {"<pad>": PAD_TOKEN_ID, "<eos>": EOS_TOKEN_ID, "<bos>": 2, "<unk>": 3}
    characters = [char for char in string.printable if char not in "\x0b\x0c\r"]
    vocab = {**specials, **{char: index + len(specials) for index, char in enumerate(characters)}}
    assert len(vocab) <= VOCAB_SIZE
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )


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
