"""Helpers of the evaluation tests: the fixture folder and a character tokenizer matching the tiny models'
128-token vocabulary (a module with a unique name, so that test files can import it unambiguously)."""

from __future__ import annotations

import string
from pathlib import Path

from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, VOCAB_SIZE

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
