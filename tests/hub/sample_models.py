"""A word-level tokenizer over the 128-token vocabulary of the tiny test models (built offline, no download)."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, VOCAB_SIZE


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Token ``t<i>`` has id ``i``; ``t0`` pads, ``t1`` ends, ``t2`` begins, as in ``tests/tiny_models.py``."""
    vocab = {f"t{index}": index for index in range(VOCAB_SIZE)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="t3"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=f"t{PAD_TOKEN_ID}",
        eos_token=f"t{EOS_TOKEN_ID}",
        bos_token="t2",
        unk_token="t3",
    )
