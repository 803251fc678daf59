"""Jacobi decoding inside ``model.generate``: a mixin, ``enable_jacobi`` and a ``custom_generate`` callable.

* ``enable_jacobi(model)`` gives an already loaded model a dynamic subclass whose ``generate`` accepts
  ``decoding="jacobi" | "jacobi_mr"`` and the Jacobi knobs. Without ``decoding`` (and without
  ``generation_config.decoding``), ``generate`` is exactly transformers' own.
* ``jacobi_generate`` is the callable behind it, usable directly as
  ``model.generate(..., custom_generate=jacobi_generate)`` on any model. transformers prepares the generation
  config, logits processors, stopping criteria and an empty ``DynamicCache``, then calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.generation.stopping_criteria import StoppingCriteriaList, StopStringCriteria
from transformers.generation.utils import GenerateDecoderOnlyOutput

from .config import DECODING_METHODS, JacobiConfig
from .engine import JacobiEngine
from .stats import JacobiStats

# arguments that only the Jacobi engine reads (beyond the config knobs)
_ENGINE_ARGUMENTS = ("jacobi_streamer", "trajectory_recorder")
_UNSUPPORTED_OUTPUTS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")


@dataclass
class JacobiGenerateOutput(GenerateDecoderOnlyOutput):
    """``GenerateDecoderOnlyOutput`` plus the call's :class:`JacobiStats`."""

    jacobi_stats: JacobiStats | None = None


def jacobi_generate(
    model,
    input_ids: torch.LongTensor,
    logits_processor=None,
    stopping_criteria=None,
    generation_config=None,
    decoding: str | None = None,
    block_size: int | None = None,
    num_blocks: int | None = None,
    activation_ratio: float | None = None,
    pool_size: int | None = None,
    candidate_length: int | None = None,
    copy_length: int | None = None,
    draft_alternatives: int | None = None,
    max_ngram_size: int | None = None,
    recycle_capacity: int | None = None,
    ngram_table=None,
    draft_init: str | None = None,
    draft_seed: int | None = None,
    prefill_draft: bool | None = None,
    finish_block_on_stop: bool | None = None,
    jacobi_streamer=None,
    trajectory_recorder=None,
    **model_kwargs,
):
    """Jacobi decoding with transformers' ``custom_generate`` protocol (greedy, lossless).

    Pass it as ``model.generate(**inputs, custom_generate=jacobi_generate, decoding="jacobi_mr", ...)``.
    transformers does not hand ``streamer=`` to custom callables: pass ``jacobi_streamer=`` instead (models prepared
    with :func:`enable_jacobi` take the usual ``streamer=``). Statistics of the call land in ``model.jacobi_stats``.
    """
    config = JacobiConfig.resolve(
        generation_config,
        decoding=decoding,
        block_size=block_size,
        num_blocks=num_blocks,
        activation_ratio=activation_ratio,
        pool_size=pool_size,
        candidate_length=candidate_length,
        copy_length=copy_length,
        draft_alternatives=draft_alternatives,
        max_ngram_size=max_ngram_size,
        recycle_capacity=recycle_capacity,
        ngram_table=ngram_table,
        draft_init=draft_init,
        draft_seed=draft_seed,
        prefill_draft=prefill_draft,
        finish_block_on_stop=finish_block_on_stop,
    )
    check_generation_config(generation_config)
    unexpected = set(model_kwargs) - {
        "attention_mask",
        "position_ids",
        "cache",
        "past_key_values",
        "use_cache",
        "logits_to_keep",
    }
    if unexpected:
        raise ValueError(f"Jacobi decoding does not support the model inputs {sorted(unexpected)}.")
    if model_kwargs.get("use_cache") is False:
        raise ValueError("Jacobi decoding needs the KV cache; do not pass use_cache=False.")
    cache = model_kwargs.get("cache", model_kwargs.get("past_key_values"))
    pad_token_id = generation_config._pad_token_tensor
    engine = JacobiEngine(
        model,
        config,
        logits_processor=logits_processor,
        stopping_criteria=stopping_criteria,
        pad_token_id=int(pad_token_id) if pad_token_id is not None else 0,
        streamer=jacobi_streamer,
        hooks=trajectory_recorder,
    )
    max_new_tokens = generation_config.max_length - input_ids.shape[1]
    sequences, stats = engine.generate(input_ids, model_kwargs.get("attention_mask"), cache, max_new_tokens)
    model.jacobi_stats = stats
    if generation_config.return_dict_in_generate:
        return JacobiGenerateOutput(sequences=sequences, cache=cache, jacobi_stats=stats)
    return sequences


def check_generation_config(generation_config) -> None:
    """Refuse what greedy Jacobi decoding cannot honour, before any forward."""
    if generation_config.num_beams is not None and generation_config.num_beams > 1:
        raise ValueError(f"num_beams={generation_config.num_beams}: Jacobi decoding is greedy; use num_beams=1.")
    if generation_config.do_sample:
        raise ValueError(
            "do_sample=True is not supported by Jacobi decoding yet (it is greedy and lossless); "
            "use do_sample=False or call generate without decoding=."
        )
    for name in _UNSUPPORTED_OUTPUTS:
        if getattr(generation_config, name, False):
            raise ValueError(f"{name}=True is not supported by Jacobi decoding.")


class JacobiGenerationMixin:
    """Adds ``decoding=`` to ``generate``; without it, ``generate`` is the parent class's own."""

    def generate(self, *args, decoding: str | None = None, streamer=None, **kwargs):
        generation_config = kwargs.get("generation_config") or self.generation_config
        decoding = decoding if decoding is not None else getattr(generation_config, "decoding", None)
        if decoding is None:
            return super().generate(*args, streamer=streamer, **kwargs)
        if decoding not in DECODING_METHODS:
            raise ValueError(f"decoding={decoding!r} is not supported; use one of {DECODING_METHODS} or None.")
        if kwargs.get("assistant_model") is not None:
            raise ValueError("assistant_model cannot be combined with Jacobi decoding; drop one of them.")
        if kwargs.get("custom_generate") is not None:
            raise ValueError("custom_generate cannot be combined with decoding=; drop one of them.")
        _move_stop_strings_into_criteria(generation_config, kwargs)
        jacobi_kwargs = {
            name: kwargs.pop(name) for name in (*JacobiConfig.knob_names(), *_ENGINE_ARGUMENTS) if name in kwargs
        }
        JacobiConfig.resolve(generation_config, decoding=decoding, **jacobi_kwargs_knobs(jacobi_kwargs))
        return super().generate(
            *args,
            custom_generate=jacobi_generate,
            decoding=decoding,
            jacobi_streamer=streamer,
            **jacobi_kwargs,
            **kwargs,
        )


def _move_stop_strings_into_criteria(generation_config, kwargs: dict) -> None:
    """Turn ``stop_strings`` into a ``StopStringCriteria`` up front.

    transformers hands no ``tokenizer`` to a ``custom_generate`` callable, so it could not build the criterion itself.
    """
    stop_strings = kwargs.pop("stop_strings", None) or getattr(generation_config, "stop_strings", None)
    if not stop_strings:
        return
    tokenizer = kwargs.pop("tokenizer", None)
    if tokenizer is None:
        raise ValueError("stop_strings needs the model's tokenizer: pass tokenizer= to generate.")
    criteria = StoppingCriteriaList(kwargs.pop("stopping_criteria", None) or [])
    criteria.append(StopStringCriteria(tokenizer=tokenizer, stop_strings=stop_strings))
    kwargs["stopping_criteria"] = criteria
    kwargs["stop_strings"] = None


def jacobi_kwargs_knobs(jacobi_kwargs: dict) -> dict:
    """The config knobs among ``jacobi_kwargs`` (validated early, before transformers prepares anything)."""
    return {name: value for name, value in jacobi_kwargs.items() if name in JacobiConfig.knob_names()}


def enable_jacobi(model):
    """Let ``model.generate`` take ``decoding="jacobi" | "jacobi_mr"``; returns the same model object.

    The model's class is swapped for a dynamic subclass that carries :class:`JacobiGenerationMixin` (nothing in
    transformers is patched; other instances of the class are untouched). Its generation config is marked as its own
    (``_from_model_config = False``), so Jacobi knobs set on it are saved and reloaded. Idempotent.

    Raises:
        ValueError: the model is an encoder-decoder, or has no ``generate``.
    """
    if isinstance(model, JacobiGenerationMixin):
        return model
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "generate"):
        raise ValueError(f"{type(model).__name__} is not a transformers generative model.")
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{type(model).__name__} is an encoder-decoder model; Jacobi decoding needs a decoder-only causal LM."
        )
    # Jacobi knobs set on generation_config must survive save/reload: transformers drops unknown attributes of a
    # generation config marked as derived from the model config.
    model.generation_config._from_model_config = False
    cls = type(model)
    model.__class__ = type(f"Jacobi{cls.__name__}", (JacobiGenerationMixin, cls), {"__module__": cls.__module__})
    return model
