"""Resolve a model argument: ``"embedded"``, ``"embedded-jacobi-forcing"``, a local folder, or a Hub id; checked
before anything is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .data_sources import looks_like_local_path
from .errors import EvaluationInputError

EMBEDDED = "embedded"
# the embedded model with the package's Jacobi Forcing adapter merged (load_default_model(jacobi_forcing=True))
EMBEDDED_JACOBI_FORCING = "embedded-jacobi-forcing"
EMBEDDED_NAMES = (EMBEDDED, EMBEDDED_JACOBI_FORCING)
DTYPES = ("float32", "bfloat16", "float16")


def check_model_argument(name: str, argument: str = "--model") -> None:
    """Raise when ``name`` is a local path that does not exist or a folder without a ``config.json``.

    A Hub id (``org/name``) is not checked here; loading it reports an unreachable Hub.
    """
    if name in EMBEDDED_NAMES:
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

    if name in EMBEDDED_NAMES:
        from ..models import convert_gguf_to_safetensors

        return AutoTokenizer.from_pretrained(convert_gguf_to_safetensors())
    try:
        return AutoTokenizer.from_pretrained(_source(name))
    except (OSError, ValueError) as error:
        raise EvaluationInputError(f"could not load the tokenizer of {name!r}: {error}") from error


def load_model(name: str, *, dtype: str = "float32", device: str = "cpu", onednn_linear: bool = False) -> Any:
    """The causal LM ``name`` (the embedded SmolLM2 model, a local folder or a Hub id) in eval mode; with
    ``onednn_linear``, its linear layers converted by ``jacobi_forcing_hf.use_onednn_linear`` (float32, CPU).

    Raises:
        EvaluationInputError: a bad dtype, ``onednn_linear`` off float32 on the CPU, a missing path, or a model
            that cannot be loaded.
    """
    import torch

    if dtype not in DTYPES:
        raise EvaluationInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    if onednn_linear:
        check_onednn_placement(dtype, device)
    check_model_argument(name)
    model = _load_causal_lm(name, getattr(torch, dtype), device)
    if onednn_linear:
        from ..onednn import use_onednn_linear

        use_onednn_linear(model)
    return model


def check_onednn_placement(dtype: str, device: str) -> None:
    """Raise unless ``dtype`` and ``device`` are what ``use_onednn_linear`` converts: float32 on the CPU."""
    if (dtype, str(device).split(":")[0]) != ("float32", "cpu"):
        raise EvaluationInputError(
            f"--onednn-linear runs float32 models on the CPU; got --dtype {dtype} --device {device}."
        )


def _load_causal_lm(name: str, torch_dtype: Any, device: str) -> Any:
    if name in EMBEDDED_NAMES:
        from ..models import load_default_model

        return load_default_model(torch_dtype, device, jacobi_forcing=name == EMBEDDED_JACOBI_FORCING)[0]
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(_source(name), dtype=torch_dtype)
    except (OSError, ValueError) as error:
        raise EvaluationInputError(f"could not load the model {name!r}: {error}") from error
    return model.to(device).eval()
