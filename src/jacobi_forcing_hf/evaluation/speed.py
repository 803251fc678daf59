"""Decoding methods and how one generation is measured: new tokens, model forwards, wall time.

Every method is measured with the same definitions:

* **new tokens**: generated tokens up to and including the first EOS (nothing after it);
* **forwards**: calls of the target model's forward during the ``generate`` call, the prefill included,
counted by
  a forward hook on the model's decoder stack (:class:`ForwardCounter`); a draft model's forwards are not
  counted;
* **TPF** (tokens per forward) = new tokens / forwards, so greedy decoding gives exactly 1.00;
* **seconds**: wall time of the whole ``generate`` call (prefill included), with CUDA synchronised on a GPU.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..generation.config import NO_NGRAM_TABLE
from .errors import EvaluationInputError

METHODS: tuple[str, ...] = ("greedy", "jacobi", "jacobi_mr", "prompt_lookup", "assisted")
JACOBI_METHODS: tuple[str, ...] = ("jacobi", "jacobi_mr")
BASELINE_METHOD = "greedy"
DEFAULT_PROMPT_LOOKUP_NUM_TOKENS = 10
WARMUP_NEW_TOKENS = 16
# the engine's defaults, used when neither the call nor the model's generation config sets a knob
ENGINE_DEFAULT_KNOBS: dict[str, int | float | None] = {
    "block_size": 16,
    "num_blocks": 2,
    "pool_size": 4,
    "activation_ratio": 0.85,
    "draft_alternatives": 0,
    "copy_length": None,  # the candidate length
    "ngram_table": None,  # no corpus n-gram table
}
KNOB_NAMES: tuple[str, ...] = tuple(ENGINE_DEFAULT_KNOBS)
# knobs added after results files were first written (name -> short label in sweep cell ids and plot titles):
# stored only when they differ from the engine default, so the configs of those files stay the same and still resume
LATE_KNOBS: dict[str, str] = {"draft_alternatives": "alt", "copy_length": "copy", "ngram_table": "table"}


def knob_value_label(name: str, value: Any) -> str:
    """A knob value as cell ids and plot titles show it: an n-gram table by its file name without suffix."""
    return Path(value).stem if name == "ngram_table" and value not in (None, NO_NGRAM_TABLE) else str(value)


def is_unstored_default(name: str, value: Any) -> bool:
    """True for a late knob at its engine default: left out of stored configs."""
    return name in LATE_KNOBS and value == ENGINE_DEFAULT_KNOBS[name]


def stored_knobs(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (knob name -> value) without the late knobs at their engine default."""
    return {name: value for name, value in values.items() if not is_unstored_default(name, value)}


def stored_knob(cell: dict[str, Any], name: str) -> Any:
    """Knob ``name`` of a stored cell (``JacobiKnobs.as_dict``); a knob left out of it has its engine default."""
    return cell.get(name, ENGINE_DEFAULT_KNOBS[name])


class ForwardCounter:
    """Counts forward calls of a model while the ``with`` block runs.

    The hook sits on the model's decoder stack (``model.base_model``), which every forward of the causal LM
    goes through, whether a decoding method calls the full model or the stack and the LM head separately.

    Example:
        >>> import torch, tiny_models  # doctest: +SKIP
        >>> model = tiny_models.build_tiny_model("llama")  # doctest: +SKIP
        >>> with ForwardCounter(model) as counter:  # doctest: +SKIP
        ...     _ = model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=8, do_sample=False)
        >>> counter.count  # doctest: +SKIP
        8
    """

    def __init__(self, model: Any) -> None:
        base = getattr(model, "base_model", None)
        self.module = base if base is not None else model
        self.count = 0
        self._handle = None

    def _hook(self, module, args, output) -> None:
        self.count += 1

    def __enter__(self) -> ForwardCounter:
        self.count = 0
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        self._handle.remove()
        self._handle = None


@dataclass(frozen=True)
class JacobiKnobs:
    """The Jacobi decoding knobs passed to ``generate``; ``None`` = the model's generation config, else the
    engine default."""

    block_size: int | None = None
    num_blocks: int | None = None
    pool_size: int | None = None
    activation_ratio: float | None = None
    draft_alternatives: int | None = None
    copy_length: int | None = None
    ngram_table: str | None = None

    def resolved(self, generation_config: Any = None) -> JacobiKnobs:
        """Every knob filled in: given value, else ``generation_config``'s attribute, else the engine
        default."""
        values = {}
        for name, default in ENGINE_DEFAULT_KNOBS.items():
            value = getattr(self, name)
            if value is None:
                value = getattr(generation_config, name, None)
            values[name] = default if value is None else value
        knobs = JacobiKnobs(**values)
        knobs.validate()
        return knobs

    def validate(self) -> None:
        """Raise ``EvaluationInputError`` for a knob outside its range."""
        for name in KNOB_NAMES:
            check_knob(name, getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        """The knobs as ``generate`` keywords, late knobs only when set (see ``stored_knobs``)."""
        return stored_knobs(asdict(self))


_KNOB_RULES = {
    "block_size": ("an integer >= 1", lambda value: _is_int(value) and value >= 1),
    "num_blocks": ("an integer >= 1", lambda value: _is_int(value) and value >= 1),
    "pool_size": ("an integer >= 0", lambda value: _is_int(value) and value >= 0),
    "activation_ratio": ("a number with 0 < r <= 1", lambda value: _is_number(value) and 0 < value <= 1),
    "draft_alternatives": ("an integer >= 0", lambda value: _is_int(value) and value >= 0),
    "copy_length": ("an integer >= 1", lambda value: _is_int(value) and value >= 1),
    "ngram_table": (
        f"the path of an n-gram table file or {NO_NGRAM_TABLE!r}",
        lambda value: isinstance(value, str) and (value == NO_NGRAM_TABLE or Path(value).is_file()),
    ),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_knob(name: str, value: Any) -> None:
    """Raise ``EvaluationInputError`` unless ``value`` is in the range of the Jacobi knob ``name`` (None
    passes).

    >>> check_knob("pool_size", -1)
    Traceback (most recent call last):
    ...
    jacobi_forcing_hf.evaluation.errors.EvaluationInputError: pool_size must be an integer >= 0, got -1.
    """
    if value is None:
        return
    description, allowed = _KNOB_RULES[name]
    if not allowed(value):
        raise EvaluationInputError(f"{name} must be {description}, got {value!r}.")


@dataclass(frozen=True)
class MethodSettings:
    """What the methods need besides the model: token budget, knobs, prompt lookup length, draft model."""

    max_new_tokens: int
    knobs: JacobiKnobs = field(default_factory=JacobiKnobs)
    prompt_lookup_num_tokens: int = DEFAULT_PROMPT_LOOKUP_NUM_TOKENS
    draft_model: Any = None

    @classmethod
    def for_model(
        cls,
        model: Any,
        max_new_tokens: int,
        knobs: JacobiKnobs | None = None,
        prompt_lookup_num_tokens: int = DEFAULT_PROMPT_LOOKUP_NUM_TOKENS,
        draft_model: Any = None,
    ) -> MethodSettings:
        """Settings for ``model``, with the ``None`` fields of ``knobs`` taken from its generation config, else
        the engine defaults (what the engine will use, so that reports and the resume check name it)."""
        return cls(
            max_new_tokens,
            (knobs or JacobiKnobs()).resolved(model.generation_config),
            prompt_lookup_num_tokens,
            draft_model,
        )

    def describe(self) -> dict[str, Any]:
        """The settings as plain data, for reports and for the resume check."""
        return {
            "max_new_tokens": self.max_new_tokens,
            "jacobi_knobs": self.knobs.as_dict(),
            "prompt_lookup_num_tokens": self.prompt_lookup_num_tokens,
        }


def check_methods(methods: Sequence[str], *, draft_model: Any = None) -> list[str]:
    """Validate method names (before any model work) and return them without duplicates, in order.

    Raises:
        EvaluationInputError: an unknown method, ``assisted`` without a draft model, or a Jacobi method
            when the Jacobi engine is not installed.
    """
    unique = list(dict.fromkeys(methods))
    if not unique:
        raise EvaluationInputError(f"no decoding method given; choose from {', '.join(METHODS)}.")
    for method in unique:
        if method not in METHODS:
            raise EvaluationInputError(f"unknown decoding method {method!r}; known methods: {', '.join(METHODS)}.")
    if "assisted" in unique and draft_model is None:
        raise EvaluationInputError("method 'assisted' needs a draft model (--draft-model / draft_model=).")
    if any(method in JACOBI_METHODS for method in unique):
        _jacobi_engine()
    return unique


def _jacobi_engine():
    """``enable_jacobi`` from the package, or a clear error when the engine is missing."""
    import jacobi_forcing_hf

    try:
        return jacobi_forcing_hf.enable_jacobi
    except AttributeError as error:
        raise EvaluationInputError(
            "methods 'jacobi' and 'jacobi_mr' need the Jacobi decoding engine "
            "(jacobi_forcing_hf.enable_jacobi), which this installation lacks."
        ) from error


def model_label(model: Any) -> str:
    """A name for reports when none is given: the folder or Hub id it was loaded from, else its model type.

    (Not the class name: enabling Jacobi decoding changes the class, and the label is part of the resume key.)
    """
    return getattr(model, "name_or_path", "") or f"{model.config.model_type} model"


def model_placement(model: Any) -> dict[str, str]:
    """The model's dtype and device as plain strings, for a run's config (part of the resume key), plus
    ``linear: "onednn"`` for a model converted by ``use_onednn_linear``."""
    from ..onednn import uses_onednn_linear

    placement = {"dtype": str(model.dtype).removeprefix("torch."), "device": str(model.device)}
    if uses_onednn_linear(model):
        placement["linear"] = "onednn"
    return placement


def prepare_model(model: Any, methods: Sequence[str]) -> Any:
    """Enable Jacobi decoding on ``model`` when a Jacobi method will run (idempotent); returns the model."""
    if any(method in JACOBI_METHODS for method in methods):
        return _jacobi_engine()(model)
    return model


@dataclass(frozen=True)
class Generation:
    """One measured ``generate`` call."""

    token_ids: list[int]
    forwards: int
    seconds: float
    stopped_at_eos: bool
    engine_forwards: int | None = None

    @property
    def new_tokens(self) -> int:
        return len(self.token_ids)


def eos_token_ids(generation_config: Any) -> set[int]:
    """The EOS ids of a generation config as a set (it may hold one id, a list, or none)."""
    eos = generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(eos)} if isinstance(eos, int) else {int(token) for token in eos}


def _generation_config(model: Any, method: str, settings: MethodSettings):
    """A copy of the model's generation config set for greedy decoding with ``method``.

    The Jacobi attributes (``decoding`` and the knobs) are removed from the copy: plain methods must not pick
    up a ``decoding`` saved with a Jacobi-trained checkpoint, and the Jacobi methods pass their knobs
    explicitly.
    """
    config = copy.deepcopy(model.generation_config)
    for name in ("decoding", *ENGINE_DEFAULT_KNOBS):
        if hasattr(config, name):
            delattr(config, name)
    eos = sorted(eos_token_ids(config))
    config.do_sample = False
    config.num_beams = 1
    config.max_new_tokens = settings.max_new_tokens
    config.max_length = None
    config.min_new_tokens = None
    for sampling_only in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
        if hasattr(config, sampling_only):
            setattr(config, sampling_only, None)
    if config.pad_token_id is None and eos:
        config.pad_token_id = eos[0]
    if method == "prompt_lookup":
        config.prompt_lookup_num_tokens = settings.prompt_lookup_num_tokens
    return config


def _method_arguments(method: str, settings: MethodSettings, generation_config: Any) -> dict[str, Any]:
    if method in JACOBI_METHODS:
        return {"decoding": method, **settings.knobs.resolved(generation_config).as_dict()}
    if method == "assisted":
        return {"assistant_model": settings.draft_model}
    return {}


def generate_measured(model: Any, inputs: dict[str, Any], method: str, settings: MethodSettings) -> Generation:
    """Run one ``generate`` call of ``method`` on a batch of one and measure it.

    ``model`` must have been through :func:`prepare_model` for the Jacobi methods.
    """
    import torch

    generation_config = _generation_config(model, method, settings)
    arguments = _method_arguments(method, settings, model.generation_config)
    device = model.device
    inputs = {name: tensor.to(device) for name, tensor in inputs.items()}
    prompt_length = inputs["input_ids"].shape[1]
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with ForwardCounter(model) as counter:
        synchronize()
        start = time.perf_counter()
        output = model.generate(**inputs, generation_config=generation_config, **arguments)
        synchronize()
        seconds = time.perf_counter() - start
    sequences = output.sequences if hasattr(output, "sequences") else output
    generated = sequences[0, prompt_length:].tolist()
    token_ids, stopped = _cut_at_eos(generated, eos_token_ids(generation_config))
    stats = getattr(model, "jacobi_stats", None) if method in JACOBI_METHODS else None
    return Generation(token_ids, counter.count, seconds, stopped, stats.forwards if stats is not None else None)


def _cut_at_eos(token_ids: list[int], eos_ids: set[int]) -> tuple[list[int], bool]:
    for position, token in enumerate(token_ids):
        if token in eos_ids:
            return token_ids[: position + 1], True
    return token_ids, False


@dataclass(frozen=True)
class Measurement:
    """A method on one prompt, over repeats: tokens and forwards (identical each repeat) and the median
    time."""

    method: str
    token_ids: list[int]
    forwards: int
    seconds: list[float]
    stopped_at_eos: bool
    engine_forwards: int | None = None

    @property
    def new_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    def record(self, reference_tokens: list[int] | None) -> dict[str, Any]:
        """Plain data for the results file; ``matches_greedy`` compares with the greedy tokens when given."""
        record = {
            "new_tokens": self.new_tokens,
            "forwards": self.forwards,
            "tpf": self.new_tokens / self.forwards if self.forwards else 0.0,
            "seconds": self.median_seconds,
            "seconds_per_repeat": self.seconds,
            "tokens_per_s": self.new_tokens / self.median_seconds if self.median_seconds > 0 else 0.0,
            "stopped_at_eos": self.stopped_at_eos,
            "token_ids": self.token_ids,
        }
        if self.engine_forwards is not None:
            record["engine_forwards"] = self.engine_forwards
        if reference_tokens is not None:
            record["matches_greedy"] = self.token_ids == reference_tokens
        return record


def combine_runs(method: str, runs: Sequence[Generation]) -> Measurement:
    """One :class:`Measurement` from repeated generations of ``method`` on the same prompt.

    Raises:
        RuntimeError: the repeats produced different tokens or forward counts (decoding is not deterministic).
    """
    first = runs[0]
    for run in runs[1:]:
        if run.token_ids != first.token_ids or run.forwards != first.forwards:
            raise RuntimeError(f"{method}: repeats gave different tokens or forward counts; decoding is not greedy.")
    return Measurement(
        method,
        first.token_ids,
        first.forwards,
        [run.seconds for run in runs],
        first.stopped_at_eos,
        first.engine_forwards,
    )


def measure_methods(
    model: Any, inputs: dict[str, Any], methods: Sequence[str], settings: MethodSettings, repeats: int
) -> dict[str, Measurement]:
    """Measure every method on one prompt, ``repeats`` times each, interleaved (m1, m2, ..., m1, m2, ...) so
    that a change of machine load during the prompt affects every method alike."""
    runs: dict[str, list[Generation]] = {method: [] for method in methods}
    for _ in range(repeats):
        for method in methods:
            runs[method].append(generate_measured(model, inputs, method, settings))
    return {method: combine_runs(method, method_runs) for method, method_runs in runs.items()}


def warm_up(model: Any, inputs: dict[str, Any], methods: Sequence[str], settings: MethodSettings) -> None:
    """One short, unmeasured generation per method (first-call allocations and lazy initialisation)."""
    short = MethodSettings(
        min(settings.max_new_tokens, WARMUP_NEW_TOKENS),
        settings.knobs,
        settings.prompt_lookup_num_tokens,
        settings.draft_model,
    )
    for method in methods:
        generate_measured(model, inputs, method, short)


def summarize(records: Sequence[dict[str, Any]], baseline_tokens_per_s: float | None = None) -> dict[str, Any]:
    """Aggregate per-prompt records of one method (or one sweep cell).

    TPF = all new tokens / all forwards; tokens/s = all new tokens / sum of the per-prompt median times;
    ``speedup`` = tokens/s over ``baseline_tokens_per_s`` (greedy's, from the same run).
    """
    new_tokens = sum(record["new_tokens"] for record in records)
    forwards = sum(record["forwards"] for record in records)
    seconds = sum(record["seconds"] for record in records)
    tokens_per_s = new_tokens / seconds if seconds > 0 else 0.0
    summary = {
        "prompts": len(records),
        "new_tokens": new_tokens,
        "forwards": forwards,
        "tpf": new_tokens / forwards if forwards else 0.0,
        "seconds": seconds,
        "tokens_per_s": tokens_per_s,
        "speedup": tokens_per_s / baseline_tokens_per_s if baseline_tokens_per_s else None,
        "stopped_at_eos": sum(bool(record["stopped_at_eos"]) for record in records),
    }
    if records and "matches_greedy" in records[0]:
        summary["matches_greedy"] = sum(bool(record["matches_greedy"]) for record in records)
    return summary
