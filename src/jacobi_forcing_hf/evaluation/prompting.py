"""Prompts: where they come from, their ids, and how a text becomes model inputs (chat template or raw)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EvaluationInputError


def tokenizer_has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def resolve_chat(tokenizer: Any, use_chat_template: bool | None) -> bool:
    """Whether prompts go through the chat template: ``None`` means "when the tokenizer has one".

    Raises:
        EvaluationInputError: ``use_chat_template=True`` but the tokenizer has no chat template.
    """
    has_template = tokenizer_has_chat_template(tokenizer)
    if use_chat_template is None:
        return has_template
    if use_chat_template and not has_template:
        raise EvaluationInputError(
            "a chat template was requested, but the tokenizer has none; use raw prompts (--chat-template off)."
        )
    return use_chat_template


def encode_prompt(tokenizer: Any, text: str, *, chat: bool) -> dict[str, Any]:
    """``input_ids`` and ``attention_mask`` (batch of one, PyTorch tensors) for ``text``.

    With ``chat=True`` the text is the single user message of a conversation, followed by the generation
    prompt of the template; otherwise it is tokenised as is.
    """
    if chat:
        messages = [{"role": "user", "content": text}]
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        encoded = tokenizer(text, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


@dataclass(frozen=True)
class PromptItem:
    """A prompt of a speed run: a stable id (the resume key) and its text (user message or raw prompt)."""

    prompt_id: str
    text: str


def as_prompt_items(prompts: Sequence[Any]) -> list[PromptItem]:
    """Prompt items from texts (ids ``prompt/<index>``), :class:`PromptItem` objects or task ``Problem``
    objects.

    Raises:
        EvaluationInputError: no prompts, or two with the same id.
    """
    items = []
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            items.append(PromptItem(f"prompt/{index}", prompt))
        elif isinstance(prompt, PromptItem):
            items.append(prompt)
        else:  # a task Problem
            items.append(PromptItem(prompt.problem_id, prompt.prompt))
    if not items:
        raise EvaluationInputError("no prompts given.")
    ids = [item.prompt_id for item in items]
    if len(set(ids)) != len(ids):
        raise EvaluationInputError("two prompts share an id; prompt ids must be unique.")
    return items


def prompts_fingerprint(items: Sequence[PromptItem]) -> str:
    """SHA-256 over the ids and texts of ``items``: a results file is resumed only for the same prompts."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.prompt_id, item.text]).encode("utf-8"))
    return digest.hexdigest()


def read_prompts_file(path: str) -> list[PromptItem]:
    """Prompts from a ``.txt`` file (one per non-empty line) or a ``.jsonl`` file (a ``prompt`` field per
    line, and an optional ``id``).

    Raises:
        EvaluationInputError: the file does not exist, or a JSONL line has no ``prompt``.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise EvaluationInputError(f"prompts file {path!r} does not exist.")
    lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if file.suffix != ".jsonl":
        return [PromptItem(f"prompt/{index}", line) for index, line in enumerate(lines)]
    items = []
    for index, line in enumerate(lines):
        entry = json.loads(line)
        if "prompt" not in entry:
            raise EvaluationInputError(f"{path} line {index + 1} has no 'prompt' field.")
        items.append(PromptItem(str(entry.get("id", f"prompt/{index}")), entry["prompt"]))
    return items
