"""Resolve a model argument: ``"embedded"``, a local folder, or a Hub id; checked before anything is
loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data_sources import looks_like_local_path
from .errors import EvaluationInputError

EMBEDDED = "embedded"
DTYPES = ("float32", "bfloat16", "float16")


def check_model_argument(name: str, argument: str = "--model") -> None:
    """Raise when ``name`` is a local path that does not exist or a folder without a ``config.json``.

    A Hub id (``org/name``) is not checked here; loading it reports an unreachable Hub.
    """
    if name == EMBEDDED:
        return
    path = Path(name).expanduser()
    if path.exists():
        if not (path.is_dir() and (path / "config.json").is_file()):
            raise EvaluationInputError(f"{argument} {name!r} is not a model folder (no config.json inside).")
        return
    if looks_like_local_path(name):
        raise EvaluationInputError(f"{argument} {name!r}: no such model folder.")


def _source(name: str) -> str:
    path = Path(name).expanduser()
    return str(path) if path.exists() else name


def load_tokenizer(name: str) -> Any:
    """The tokenizer of ``name`` (cheap: loaded first so that prompts and data are checked before the model).

    Raises:
        EvaluationInputError: a missing path, or a tokenizer that cannot be loaded.
    """
    check_model_argument(name)
    from transformers import AutoTokenizer

    if name == EMBEDDED:
        from ..models import convert_gguf_to_safetensors

        return AutoTokenizer.from_pretrained(convert_gguf_to_safetensors())
    try:
        return AutoTokenizer.from_pretrained(_source(name))
    except (OSError, ValueError) as error:
        raise EvaluationInputError(f"could not load the tokenizer of {name!r}: {error}") from error


def load_model(name: str, *, dtype: str = "float32", device: str = "cpu") -> Any:
    """The causal LM ``name`` (the embedded SmolLM2 model, a local folder or a Hub id) in eval mode.

    Raises:
        EvaluationInputError: a bad dtype, a missing path, or a model that cannot be loaded.
    """
    import torch

    if dtype not in DTYPES:
        raise EvaluationInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    check_model_argument(name)
    torch_dtype = getattr(torch, dtype)
    if name == EMBEDDED:
        from ..models import load_default_model

        return load_default_model(torch_dtype, device)[0]
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(_source(name), dtype=torch_dtype)
    except (OSError, ValueError) as error:
        raise EvaluationInputError(f"could not load the model {name!r}: {error}") from error
    return model.to(device).eval()
