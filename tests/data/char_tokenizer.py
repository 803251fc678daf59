"""A character-level tokenizer that fits the tiny models' vocabulary of 128 (tests only)."""

from __future__ import annotations

import string

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

# Ids 0, 1, 2 are pad, eos and bos, as in tests/tiny_models.py; printable ASCII follows.
_SPECIAL_TOKENS = ("<pad>", "</s>", "<s>")
_CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant: {% endif %}"
)


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (ids 3 … 102), with a small chat template."""
    alphabet = [*_SPECIAL_TOKENS, *dict.fromkeys(string.printable)]
    backend = Tokenizer(models.WordLevel({token: i for i, token in enumerate(alphabet)}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", bos_token="<s>", padding_side="left"
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer
