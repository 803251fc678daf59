"""Dataset and model cards of pushed Jacobi Forcing data and checkpoints, rendered from Jinja templates.

The templates live in ``jacobi_forcing_hf/resources/hub/``. Card metadata (the YAML header) carries everything a
program needs (``configs``, ``dataset_info``, ``base_model``, ``model-index``, tags) plus a ``jacobi_forcing`` key
with the facts of our own (block size, noise schedule, decoding defaults, training recipe); the card text is
generated from that metadata, so pushing one config of a dataset regenerates a card that describes all of them.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .repo import HubPushError

CARD_METADATA_KEY = "jacobi_forcing"
BASE_TAGS: tuple[str, ...] = ("jacobi-forcing", "jacobi-decoding", "parallel-decoding", "custom_generate")

# Benchmarks we know by name: normalised key -> (Hub dataset id, display name).
KNOWN_BENCHMARKS: dict[str, tuple[str, str]] = {
    "humaneval": ("openai/openai_humaneval", "HumanEval"),
    "mbpp": ("google-research-datasets/mbpp", "MBPP"),
    "gsm8k": ("openai/gsm8k", "GSM8K"),
    "math500": ("HuggingFaceH4/MATH-500", "MATH-500"),
}
METRIC_NAMES: dict[str, str] = {
    "pass@1": "pass@1",
    "tpf": "tokens per forward (TPF)",
    "tokens_per_second": "tokens/s",
    "speedup": "speed-up over greedy",
}
THROUGHPUT_METRICS = frozenset({"tokens_per_second", "speedup"})
KNOB_MEANINGS: dict[str, str] = {
    "decoding": "`jacobi`: one block in flight; `jacobi_mr`: multiblock + rejection recycling",
    "block_size": "n, tokens per block",
    "num_blocks": "K, most blocks in flight (`jacobi_mr`)",
    "pool_size": "recycled n-gram candidates verified per forward (`jacobi_mr`)",
    "activation_ratio": "r, share of the newest block accepted before the next block is spawned",
}
# Fields of a training config that say where, how fast or how a run was logged, not how the model was trained.
_RECIPE_NOISE = frozenset(
    {
        "output_dir",
        "logging_dir",
        "run_name",
        "report_to",
        "push_to_hub",
        "hub_model_id",
        "hub_token",
        "hub_strategy",
        "hub_private_repo",
        "overwrite_output_dir",
        "logging_steps",
        "logging_strategy",
        "save_steps",
        "save_strategy",
        "save_total_limit",
        "use_cpu",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "disable_tqdm",
        "debug",
        "accelerator_config",
        "gradient_checkpointing",
        "activation_checkpointing",
    }
)
_DATASET_FACT_LABELS: dict[str, str] = {
    "source_model": "source model",
    "prompt_source": "prompts",
    "prompt_license": "prompt licence",
    "block_size": "block size (n)",
    "noise_schedule": "noise schedule",
    "window": "noise window (w)",
    "rows": "rows",
    "prompts": "distinct prompts",
    "states_per_block_mean": "Jacobi states per block (mean)",
    "state_tokens": "tokens in all states",
    "fixed_point_tokens": "fixed-point tokens",
    "tokens": "tokens",
    "blocks": "(noisy, clean) block pairs",
    "sequence_length_max": "longest sequence",
}


def _template(name: str) -> str:
    return resources.files("jacobi_forcing_hf").joinpath("resources", "hub", name).read_text(encoding="utf-8")


def is_hub_id(name: object) -> bool:
    """True for a string that is a valid Hub repo id and not a local path (used to link base models)."""
    if not isinstance(name, str) or not name or os.path.exists(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _hub_link(name: str, kind: str = "") -> str:
    prefix = f"{kind}/" if kind else ""
    return f"[`{name}`](https://huggingface.co/{prefix}{name})" if is_hub_id(name) else f"`{name}`"


def _format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


# ---------------------------------------------------------------------------------------------- dataset cards
def _feature_type(feature: Any) -> str:
    """A compact type string for one feature of the ``dataset_info`` YAML (``list<list<int64>>``)."""
    if isinstance(feature, str):
        return feature
    if isinstance(feature, dict):
        if "dtype" in feature:
            return str(feature["dtype"])
        for key in ("list", "sequence", "large_list"):
            if key in feature:
                return f"list<{_feature_type(feature[key])}>"
        if "struct" in feature:
            return "struct"
    return "?"


def _config_features(card_data: DatasetCardData, config_name: str) -> dict[str, str]:
    infos = card_data.get("dataset_info") or []
    for info in [infos] if isinstance(infos, dict) else infos:
        if info.get("config_name", "default") == config_name:
            return {feature["name"]: _feature_type(feature) for feature in info.get("features", [])}
    return {}


def render_dataset_card(card_data: DatasetCardData, repo_id: str) -> DatasetCard:
    """The card of a dataset repo holding Jacobi Forcing data, with a section for every config in ``card_data``."""
    from .data import DATASET_KINDS

    facts_by_config = card_data.get(CARD_METADATA_KEY) or {}
    configs = []
    for entry in card_data.get("configs") or []:
        name = entry["config_name"]
        kind = DATASET_KINDS.get(name)
        facts = facts_by_config.get(name, {})
        features = _config_features(card_data, name)
        splits = [data_file["split"] for data_file in entry.get("data_files", []) if isinstance(data_file, dict)]
        meanings = kind.descriptions if kind else {}
        configs.append(
            {
                "name": name,
                "title": kind.title if kind else "data",
                "summary": kind.summary if kind else "Not described by jacobi-forcing-hf.",
                "split": splits[0] if splits else "train",
                "rows": _format_number(facts.get("rows", "?")),
                "facts": [
                    (_DATASET_FACT_LABELS.get(key, key.replace("_", " ")), _dataset_fact(key, value))
                    for key, value in sorted(facts.items(), key=_fact_order)
                ],
                "columns": [
                    {"name": column, "type": dtype, "meaning": meanings.get(column, "")}
                    for column, dtype in features.items()
                ],
            }
        )
    license = card_data.get("license")
    licence_text = f"The data is released under `{license}`." if license else "No licence was declared."
    prompt_licences = sorted(
        {facts["prompt_license"] for facts in facts_by_config.values() if "prompt_license" in facts}
    )
    if prompt_licences:
        licence_text += f" The prompts come with their own licence ({', '.join(prompt_licences)}); respect it."
    return DatasetCard.from_template(
        card_data,
        template_str=_template("dataset_card.md"),
        title=f"Jacobi Forcing data: {repo_id}",
        repo_id=repo_id,
        configs=configs,
        licence_text=licence_text,
    )


def _fact_order(item: tuple[str, Any]) -> tuple[int, str]:
    """Known facts in the order of ``_DATASET_FACT_LABELS`` (provenance first, counts last), then the rest."""
    known = list(_DATASET_FACT_LABELS)
    return (known.index(item[0]) if item[0] in known else len(known), item[0])


def _dataset_fact(key: str, value: Any) -> str:
    if key == "source_model":
        return _hub_link(value)
    if key == "prompt_source":
        return _hub_link(value, "datasets")
    return _format_number(value)


# ---------------------------------------------------------------------------------------------- model cards
def eval_results_from(results: Mapping[str, Mapping[str, float]], *, hardware: str | None = None) -> list[EvalResult]:
    """Turn ``{benchmark: {metric: value}}`` into model-index entries (``EvalResult``), checking the values."""
    if not isinstance(results, Mapping):
        raise HubPushError(
            "results must map a benchmark to its metrics, like {'humaneval': {'pass@1': 0.41, 'tpf': 2.9, "
            f"'tokens_per_second': 61.0}}; got {type(results).__name__}."
        )
    eval_results = []
    for benchmark, metrics in results.items():
        if not isinstance(metrics, Mapping) or not metrics:
            raise HubPushError(f"results[{benchmark!r}] must be a non-empty mapping metric -> number.")
        dataset_id, dataset_name = KNOWN_BENCHMARKS.get(
            benchmark.lower().replace("-", "").replace("_", ""), (benchmark, benchmark)
        )
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise HubPushError(f"results[{benchmark!r}][{metric!r}] must be a number, got {value!r}.")
            eval_results.append(
                EvalResult(
                    task_type="text-generation",
                    dataset_type=dataset_id,
                    dataset_name=dataset_name,
                    metric_type=metric,
                    metric_value=float(value),
                    metric_name=METRIC_NAMES.get(metric, metric),
                    metric_config=hardware if metric in THROUGHPUT_METRICS else None,
                )
            )
    return eval_results


def yaml_safe(value: Any) -> Any:
    """``value`` made of YAML-safe types only (enums by value, sequences as lists, anything else as text)."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [yaml_safe(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): yaml_safe(item) for key, item in value.items()}
    return str(value)


def recipe_items(training_config: Any) -> dict[str, Any]:
    """The settings of a training run worth recording: a mapping as given, or the fields of a config dataclass
    (``JacobiForcingConfig``, ``SFTConfig``, ``TrainingArguments``) that differ from their defaults."""
    if training_config is None:
        return {}
    if isinstance(training_config, Mapping):
        return {str(key): yaml_safe(value) for key, value in training_config.items()}
    if not dataclasses.is_dataclass(training_config):
        raise HubPushError(
            "training_config must be a mapping or a config dataclass such as JacobiForcingConfig, "
            f"got {type(training_config).__name__}."
        )
    items = {}
    for field in dataclasses.fields(training_config):
        if field.name.startswith("_") or field.name in _RECIPE_NOISE or "token" in field.name:
            continue
        value = getattr(training_config, field.name)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default and not (_is_unset(value) and _is_unset(default)):
            items[field.name] = yaml_safe(value)
    return dict(sorted(items.items()))


def _is_unset(value: Any) -> bool:
    """Empty, or left for the config to resolve (``"auto"``): post-init turns one into the other."""
    if isinstance(value, (list, dict)):
        return not value
    return value is dataclasses.MISSING or value in (None, "", "auto")


def _is_trl_config(training_config: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "trl" for cls in type(training_config).__mro__)


def usage_snippets(repo_id: str, *, has_chat_template: bool, is_adapter: bool) -> tuple[str, str]:
    """Code that loads and runs the model: with this package, and through ``custom_generate`` without it.

    An adapter repo loads through transformers' PEFT integration, which reads the base model's generation
    config; the snippet then reads this repo's, which carries the Jacobi defaults.
    """
    imports = "from transformers import AutoModelForCausalLM, AutoTokenizer"
    load = (
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
        f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")'
    )
    if is_adapter:
        imports = "from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig"
        load += (
            f"  # base model + this adapter (needs peft)\n"
            f'model.generation_config = GenerationConfig.from_pretrained("{repo_id}")  # the Jacobi defaults'
        )
    if has_chat_template:
        inputs = (
            'messages = [{"role": "user", "content": "Write a Python function that reverses a string."}]\n'
            "inputs = tokenizer.apply_chat_template(\n"
            '    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True\n'
            ")"
        )
    else:
        inputs = 'inputs = tokenizer("def reverse(text):", return_tensors="pt")'
    decode = 'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))'
    with_package = (
        f"import jacobi_forcing_hf as jf\n{imports}\n\n{load}\nmodel = jf.enable_jacobi(model)\n{inputs}\n"
        "output = model.generate(**inputs, max_new_tokens=256)  # decoding defaults from generation_config.json\n"
        f"{decode}\nprint(model.jacobi_stats)  # forwards, tokens per forward (TPF)"
    )
    without_package = (
        f"{imports}\n\n{load}\n{inputs}\n"
        f'output = model.generate(**inputs, max_new_tokens=256, custom_generate="{repo_id}", '
        "trust_remote_code=True)\n"
        f"{decode}"
    )
    return with_package, without_package


def build_model_card(
    repo_id: str,
    *,
    generation_defaults: Mapping[str, Any],
    base_model: str | None = None,
    training_config: Any = None,
    results: Mapping[str, Mapping[str, float]] | None = None,
    hardware: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    license: str | None = None,
    is_adapter: bool = False,
    has_chat_template: bool = True,
) -> ModelCard:
    """The model card of a Jacobi Forcing checkpoint.

    Metadata: ``base_model``, ``library_name``, ``pipeline_tag``, tags (``jacobi-forcing``, ``trl`` for TRL
    configs, ``peft`` for adapters, plus ``tags``), ``datasets``, ``license``, the results as a model-index
    (``eval_results``) and, under ``jacobi_forcing``, the decoding defaults and the training recipe. Text: the
    decoding defaults, usage with and without this package, results, the recipe.

    ``results`` maps a benchmark to its metrics, e.g. ``{"humaneval": {"pass@1": 0.41, "tpf": 2.9,
    "tokens_per_second": 61.0}}``; ``hardware`` says where speeds were measured (e.g. ``"1x H100"``).
    """
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    tags = [tags] if isinstance(tags, str) else list(tags)
    model_name = repo_id.split("/")[-1]
    recipe = recipe_items(training_config)
    eval_results = eval_results_from(results, hardware=hardware) if results else None
    card_tags = list(BASE_TAGS)
    if training_config is not None and _is_trl_config(training_config):
        card_tags += ["trl", "sft"]
    if is_adapter:
        card_tags += ["peft", "lora"]
    card_tags += tags
    jacobi_metadata: dict[str, Any] = {"generation": {k: yaml_safe(v) for k, v in generation_defaults.items()}}
    if recipe:
        jacobi_metadata["training"] = recipe
    card_data = ModelCardData(
        base_model=base_model if is_hub_id(base_model) else None,
        datasets=datasets or None,
        eval_results=eval_results,
        library_name="peft" if is_adapter else "transformers",
        license=license,
        model_name=model_name,
        pipeline_tag="text-generation",
        tags=card_tags,
        **{CARD_METADATA_KEY: jacobi_metadata},
    )
    base = _hub_link(base_model) if base_model else None
    if recipe:
        intro = f"{model_name} is {base or 'a model'} post-trained with Jacobi Forcing"
    else:
        intro = f"{model_name} is {base or 'a causal language model'} packaged for Jacobi decoding"
    intro += (
        " ([arXiv:2512.14681](https://arxiv.org/abs/2512.14681)): it decodes a block of tokens in parallel by "
        "fixed-point (Jacobi) iteration instead of one token per forward pass."
    )
    with_package, without_package = usage_snippets(repo_id, has_chat_template=has_chat_template, is_adapter=is_adapter)
    if _is_trl_config(training_config):
        trainer_sentence = "Trained with TRL; the settings that differ from the defaults of the training config:"
    else:
        trainer_sentence = "Training settings:"
    return ModelCard.from_template(
        card_data,
        template_str=_template("model_card.md"),
        title=model_name,
        intro=intro,
        knobs=[
            {"name": name, "value": value, "meaning": KNOB_MEANINGS.get(name, "")}
            for name, value in generation_defaults.items()
        ],
        usage_with_package=with_package,
        usage_without_package=without_package,
        results=[
            {"benchmark": r.dataset_name, "metric": r.metric_name, "value": _format_number(r.metric_value)}
            for r in eval_results or []
        ],
        hardware=hardware,
        trainer_sentence=trainer_sentence,
        training_items=list(recipe.items()),
        datasets=datasets,
    )
