"""Prompt sources for trajectory collection: any ``datasets`` source, and a built-in offline set of code
prompts.

A prompt dataset has either a ``messages`` column (chat turns ``{"role", "content"}``; the tokenizer's chat
template is applied with ``add_generation_prompt=True``, and trailing assistant turns, a dataset's reference
answer, are dropped) or a ``prompt`` column (raw text, tokenized as is).

The built-in source ``"builtin:stdlib"`` turns public functions and methods of the Python standard library
that have a docstring into "implement this" chat prompts. It ships as a generated file
(``resources/stdlib_prompts.jsonl.gz``, with a ``.meta.json`` beside it) rather than being built at run time,
so that its content and fingerprint do not change with the interpreter's version; :func:`write_stdlib_prompts`
regenerates it. The docstrings are © the Python Software Foundation, under the PSF License Agreement (version
2).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import sys
import sysconfig
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import datasets

PROMPT_COLUMNS: tuple[str, ...] = ("messages", "prompt")
STDLIB_SOURCE = "builtin:stdlib"
BUILTIN_SOURCES: tuple[str, ...] = (STDLIB_SOURCE,)
STDLIB_PROMPTS_FILE = "stdlib_prompts.jsonl.gz"
STDLIB_LICENCE = "PSF-2.0"

# Parts of the standard library that are tests, IDE/GUI code, demos or vendored data rather than library
# functions.
_EXCLUDED_STDLIB_PACKAGES = frozenset(
    {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "pydoc_data",
        "site-packages",
    }
)
_MIN_DOCSTRING_CHARS = 40
_MAX_DOCSTRING_CHARS = 2000


def load_prompts(source: Any, *, split: str = "train") -> datasets.Dataset:
    """Load a prompt dataset and check that it can be collected from.

    Args:
        source: a ``datasets.Dataset`` (or ``DatasetDict``, whose ``split`` is taken), ``"builtin:stdlib"``, a
            folder written by ``save_to_disk``, a ``.json``/``.jsonl``/``.parquet`` file (``.gz`` allowed for
            JSON), a folder of such files, or a Hub dataset id.
        split: the split to take from a ``DatasetDict``, a data folder or a Hub dataset.

    Returns:
        The dataset, unchanged, with a ``messages`` or a ``prompt`` column.

    Raises:
        ValueError: when the dataset is empty or has neither a ``messages`` nor a ``prompt`` column.
    """
    from datasets import Dataset, DatasetDict

    if isinstance(source, (str, os.PathLike)):
        source = _load_source(str(source), split=split)
    if isinstance(source, DatasetDict):
        if split not in source:
            raise ValueError(f"the dataset has no split {split!r}; its splits are {list(source)}.")
        source = source[split]
    if not isinstance(source, Dataset):
        raise TypeError(
            f"prompts must be a datasets.Dataset, a path or a Hub id, got {type(source).__name__}; "
            f"built-in sources: {BUILTIN_SOURCES}."
        )
    prompt_column(source)
    if len(source) == 0:
        raise ValueError("the prompt dataset is empty: there is nothing to collect.")
    return source


def prompt_column(prompts: datasets.Dataset) -> str:
    """The column the prompts are read from: ``"messages"`` (preferred) or ``"prompt"``."""
    for name in PROMPT_COLUMNS:
        if name in prompts.column_names:
            return name
    raise ValueError(
        f"a prompt dataset needs a 'messages' column (chat turns) or a 'prompt' column (raw text); "
        f"found the columns {prompts.column_names}."
    )


def tokenize_prompts(prompts: datasets.Dataset, tokenizer: Any) -> list[list[int]]:
    """Token ids of every prompt, in order: chat template for ``messages``, plain text for ``prompt``."""
    column = prompt_column(prompts)
    if column == "prompt":
        return [list(tokenizer(text)["input_ids"]) for text in prompts["prompt"]]
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            "the prompts are chat messages but the tokenizer has no chat template; set "
            "tokenizer.chat_template or give the prompts as a 'prompt' column of raw text."
        )
    token_ids = []
    for index, messages in enumerate(prompts["messages"]):
        turns = _prompt_turns(messages, index)
        token_ids.append(
            list(tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True, return_dict=False))
        )
    return token_ids


def prompt_set_fingerprint(prompts: datasets.Dataset) -> str:
    """SHA-256 of the prompts' content (the ``messages`` or ``prompt`` column, in order)."""
    column = prompt_column(prompts)
    digest = hashlib.sha256(column.encode())
    for value in prompts[column]:
        digest.update(json.dumps(value, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _prompt_turns(messages: Any, index: int) -> list[dict[str, str]]:
    """The chat turns to template: the messages without trailing assistant turns."""
    if not isinstance(messages, list) or not all(
        isinstance(turn, dict) and "role" in turn and "content" in turn for turn in messages
    ):
        raise ValueError(f"prompt {index}: 'messages' must be a list of {{'role', 'content'}} turns, got {messages!r}.")
    turns = list(messages)
    while turns and turns[-1]["role"] == "assistant":
        turns.pop()
    if not turns:
        raise ValueError(f"prompt {index} has no turn before the assistant's answer.")
    return turns


def _load_source(source: str, *, split: str) -> datasets.Dataset | datasets.DatasetDict:
    from datasets import load_dataset, load_from_disk

    if source == STDLIB_SOURCE:
        return load_stdlib_prompts()
    if source.startswith("builtin:"):
        raise ValueError(f"unknown built-in prompt source {source!r}; available: {BUILTIN_SOURCES}.")
    path = Path(source)
    if path.is_dir() and any((path / name).exists() for name in ("state.json", "dataset_dict.json")):
        return load_from_disk(source)
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")):
            return load_dataset("json", data_files=source, split="train")
        if name.endswith(".parquet"):
            return load_dataset("parquet", data_files=source, split="train")
        raise ValueError(f"cannot read prompts from {source!r}: use a .json, .jsonl or .parquet file.")
    # a folder of data files, or a Hub dataset id
    return load_dataset(source, split=split)


# ----------------------------------------------------------------------------------------------------
# The built-in source: the standard library's documented functions as "implement this" prompts


def load_stdlib_prompts() -> datasets.Dataset:
    """The built-in prompt set (``"builtin:stdlib"``): columns ``messages`` (one user turn) and ``source``."""
    from datasets import Dataset

    packaged = resources.files("jacobi_forcing_hf").joinpath("resources", STDLIB_PROMPTS_FILE)
    with packaged.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return Dataset.from_list(rows)


def extract_stdlib_prompts(stdlib_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Build the stdlib prompts from source files (no import of any module), deduplicated, in a fixed order.

    Every public function and public method of a public class, in a public module outside tests, GUI and demo
    packages, whose docstring has 40 to 2000 characters becomes one prompt; prompts whose docstring repeats an
    earlier one (case and whitespace aside) are dropped. The order is by a hash of the qualified name, which
    is fixed but mixes modules, so that the first prompts of the set are varied.
    """
    root = Path(stdlib_dir or sysconfig.get_paths()["stdlib"])
    candidates = sorted(_stdlib_functions(root), key=lambda item: item[0])
    prompts, seen_docstrings = [], set()
    for qualified_name, prompt_text, docstring in candidates:
        key = " ".join(docstring.lower().split())
        if key in seen_docstrings:
            continue
        seen_docstrings.add(key)
        prompts.append({"messages": [{"role": "user", "content": prompt_text}], "source": f"stdlib:{qualified_name}"})
    prompts.sort(key=lambda row: hashlib.sha256(row["source"].encode()).hexdigest())
    return prompts


def write_stdlib_prompts(directory: str | Path, stdlib_dir: str | Path | None = None) -> Path:
    """Write ``stdlib_prompts.jsonl.gz`` and its ``.meta.json`` (size, licence, origin) into ``directory``."""
    directory = Path(directory)
    prompts = extract_stdlib_prompts(stdlib_dir)
    lines = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in prompts)
    path = directory / STDLIB_PROMPTS_FILE
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed:
        compressed.write(lines.encode("utf-8"))
    meta = {
        "num_prompts": len(prompts),
        "built_from": f"CPython {sys.version_info.major}.{sys.version_info.minor} standard library",
        "licence": STDLIB_LICENCE,
        "licence_note": "Signatures and docstrings © Python Software Foundation, PSF License Agreement v2.",
        "sha256_of_jsonl": hashlib.sha256(lines.encode("utf-8")).hexdigest(),
    }
    path.with_name(STDLIB_PROMPTS_FILE.replace(".jsonl.gz", ".meta.json")).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _stdlib_functions(root: Path) -> Iterator[tuple[str, str, str]]:
    """``(qualified name, prompt text, docstring)`` for every documented public function or method."""
    for path in sorted(root.rglob("*.py")):
        module_parts = path.relative_to(root).with_suffix("").parts
        if module_parts[-1] == "__init__":
            module_parts = module_parts[:-1]
        if not module_parts or not _is_public_module(module_parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few files are deliberately invalid (bad encodings, test data)
        module = ".".join(module_parts)
        for node in tree.body:
            if _is_public_function(node):
                docstring = _usable_docstring(node)
                if docstring:
                    yield f"{module}.{node.name}", _function_prompt(node, docstring), docstring
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for method in node.body:
                    docstring = _usable_docstring(method) if _is_public_function(method) else None
                    if docstring:
                        yield (
                            f"{module}.{node.name}.{method.name}",
                            _method_prompt(node, method, docstring),
                            docstring,
                        )


def _is_public_module(parts: tuple[str, ...]) -> bool:
    return (
        parts[0] not in _EXCLUDED_STDLIB_PACKAGES
        and not parts[0].startswith("config-")
        and not any(part.startswith("_") or part in _EXCLUDED_STDLIB_PACKAGES for part in parts)
    )


def _is_public_function(node: ast.AST) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")


def _usable_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    docstring = ast.get_docstring(node, clean=True)
    if docstring is None or '"""' in docstring or "\\" in docstring:
        return None
    if not _MIN_DOCSTRING_CHARS <= len(docstring) <= _MAX_DOCSTRING_CHARS:
        return None
    return docstring


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{keyword} {node.name}({ast.unparse(node.args)}){returns}:"


def _docstring_block(docstring: str, indent: str) -> str:
    lines = docstring.splitlines()
    body = "\n".join(f"{indent}{line}".rstrip() for line in lines[1:])
    closing = f"\n{body}\n{indent}" if len(lines) > 1 else ""
    return f'{indent}"""{lines[0]}{closing}"""'


def _function_prompt(node: ast.FunctionDef | ast.AsyncFunctionDef, docstring: str) -> str:
    code = f"{_signature(node)}\n{_docstring_block(docstring, '    ')}"
    return f"Implement this Python function:\n\n```python\n{code}\n```"


def _method_prompt(cls: ast.ClassDef, method: ast.FunctionDef | ast.AsyncFunctionDef, docstring: str) -> str:
    bases = ", ".join(ast.unparse(base) for base in cls.bases)
    header = f"class {cls.name}({bases}):" if bases else f"class {cls.name}:"
    code = f"{header}\n    {_signature(method)}\n{_docstring_block(docstring, '        ')}"
    return f"Implement the method `{method.name}` of this Python class:\n\n```python\n{code}\n```"
