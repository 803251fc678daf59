"""Push collected trajectories and packed training sequences to a dataset repo, with a generated card.

Both stages of the data pipeline can live in one repo, as two configs of it:

>>> from jacobi_forcing_hf.hub import push_trajectories, push_training_data  # doctest: +SKIP
>>> push_trajectories(trajectories, "you/smollm2-jacobi-data", source_model="HuggingFaceTB/SmolLM2-135M-Instruct",
...                   prompt_source="openai/openai_humaneval", prompt_license="mit")  # doctest: +SKIP
>>> push_training_data(packed, "you/smollm2-jacobi-data", window=16, noise_schedule="progressive")  # doctest: +SKIP
>>> load_dataset("you/smollm2-jacobi-data", "trajectories", split="train")  # doctest: +SKIP

Each push writes the config's Parquet shards under ``<config>/`` and a README whose YAML lists every config
(``configs`` for ``load_dataset``, ``dataset_info`` with the exact features) and the facts of each
(``jacobi_forcing``), from which the card text is regenerated, in the same single commit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import CommitInfo, DatasetCard, DatasetCardData, HfApi

from .cards import CARD_METADATA_KEY, is_hub_id, render_dataset_card, yaml_safe
from .repo import HubPushError, check_repo_id, commit_in_one_go, open_repo, resolve_token

if TYPE_CHECKING:
    import datasets

TRAJECTORIES = "trajectories"
TRAINING_DATA = "training_data"
DEFAULT_MAX_SHARD_BYTES = 500 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DatasetKind:
    """One stage of the data pipeline as it appears on the Hub: its config name, title and columns."""

    name: str
    title: str
    summary: str
    required: tuple[str, ...]  # columns a dataset of this kind must have
    descriptions: Mapping[str, str]  # column -> what it holds, for the card (required and optional columns)

    def missing_columns(self, column_names: list[str]) -> list[str]:
        return [column for column in self.required if column not in column_names]


# Schemas of jacobi_forcing_hf.collect_trajectories and jacobi_forcing_hf.build_training_sequences (docs/data.md).
DATASET_KINDS: dict[str, DatasetKind] = {
    TRAJECTORIES: DatasetKind(
        name=TRAJECTORIES,
        title="Jacobi trajectories",
        summary=(
            "One row per decoded block: the states that greedy block Jacobi decoding of the source model went "
            "through, from the initial draft to the fixed point (which equals the model's greedy output)."
        ),
        required=("prompt_id", "block_index", "prefix_ids", "states", "output_ids"),
        descriptions={
            "prompt_id": "index of the prompt the block belongs to",
            "block_index": "k, the block's position in the response (0 = first block)",
            "prompt_length": "P, tokens of the templated prompt",
            "prefix_ids": "every token before the block: the templated prompt, then the fixed points of blocks 0 … k−1",
            "states": "the block's states of `block_size` tokens: first the initial draft actually used, last the "
            "fixed point",
            "output_ids": "the block's fixed point, `states[-1]`",
            "num_iterations": "forwards the block took, as recorded",
        },
    ),
    TRAINING_DATA: DatasetKind(
        name=TRAINING_DATA,
        title="Jacobi Forcing training sequences",
        summary=(
            "One row per prompt (and variant): the prompt followed, for every block, by a noisy state chosen by "
            "the noise schedule and the block's fixed point (prompt ‖ noisy₀ ‖ clean₀ ‖ noisy₁ ‖ clean₁ ‖ …), "
            "ready for `JacobiForcingTrainer`."
        ),
        required=("input_ids", "prompt_length", "num_blocks", "prompt_id"),
        descriptions={
            "prompt_id": "the response's prompt (links back to the trajectories)",
            "variant": "which packing of the response (other noisy states per variant)",
            "input_ids": "prompt ‖ noisy₀ ‖ clean₀ ‖ … : `prompt_length + 2 · num_blocks · block_size` tokens",
            "prompt_length": "P, prompt tokens at the start of `input_ids`",
            "num_blocks": "T, (noisy, clean) block pairs after the prompt",
            "block_size": "n, tokens per block",
            "noisy_state_indices": "index into the trajectory's `states` of each block's noisy state",
            "noisy_ratios": "unconverged fraction of each chosen noisy state",
        },
    ),
}


def detect_dataset_kind(column_names: list[str], kind: str | None = None) -> DatasetKind:
    """The :class:`DatasetKind` of a dataset with ``column_names``; refuse a dataset that is not ours.

    ``kind`` names the expected kind; without it, the kind whose columns are all present is taken.
    """
    if kind is not None and kind not in DATASET_KINDS:
        raise HubPushError(f"kind must be one of {sorted(DATASET_KINDS)}, got {kind!r}.")
    candidates = [DATASET_KINDS[kind]] if kind else list(DATASET_KINDS.values())
    for candidate in candidates:
        if not candidate.missing_columns(column_names):
            return candidate
    reasons = "; ".join(
        f"as {candidate.name} it lacks columns {candidate.missing_columns(column_names)}" for candidate in candidates
    )
    raise HubPushError(
        f"This dataset is not Jacobi Forcing data ({reasons}); its columns are {sorted(column_names)}. "
        "Push trajectories from `collect_trajectories` or packed sequences from the packing step."
    )


def dataset_statistics(dataset: datasets.Dataset, kind: DatasetKind) -> dict[str, Any]:
    """Row, prompt, token and block counts of ``dataset`` for its card, and the block size it implies.

    Raises :class:`HubPushError` when the rows disagree on the block size (a mix of runs).
    """
    import pyarrow.compute as pc

    if len(dataset) == 0:
        raise HubPushError("The dataset is empty: there is nothing to push.")
    table = dataset.with_format("arrow")[:]
    stats: dict[str, Any] = {"rows": table.num_rows, "prompts": len(pc.unique(table.column("prompt_id")))}
    if kind.name == TRAJECTORIES:
        states_per_block = pc.list_value_length(table.column("states"))
        state_lengths = pc.list_value_length(pc.list_flatten(table.column("states")))
        block_sizes = pc.unique(state_lengths).to_pylist()
        stats["states_per_block_mean"] = round(pc.mean(states_per_block).as_py(), 2)
        stats["state_tokens"] = pc.sum(state_lengths).as_py()
    else:
        sequence_lengths = pc.list_value_length(table.column("input_ids"))
        block_tokens = pc.subtract(pc.cast(sequence_lengths, "float64"), table.column("prompt_length"))
        per_block = pc.divide(block_tokens, pc.multiply(pc.cast(table.column("num_blocks"), "float64"), 2.0))
        block_sizes = pc.unique(per_block).to_pylist()
        stats["tokens"] = pc.sum(sequence_lengths).as_py()
        stats["blocks"] = pc.sum(table.column("num_blocks")).as_py()
        stats["sequence_length_max"] = pc.max(sequence_lengths).as_py()
    if len(block_sizes) != 1 or not float(block_sizes[0]).is_integer() or block_sizes[0] < 1:
        raise HubPushError(
            f"The rows of this {kind.name} dataset do not share one whole block size (found "
            f"{sorted(block_sizes)[:5]}): push data of a single block size per config."
        )
    stats["block_size"] = int(block_sizes[0])
    if kind.name == TRAJECTORIES:
        stats["fixed_point_tokens"] = table.num_rows * stats["block_size"]
    return stats


def _write_shards(
    dataset: datasets.Dataset, nbytes: int, folder: Path, prefix: str, split: str, max_shard_bytes: int
) -> dict[str, Path]:
    """Write ``dataset`` as Parquet shards named like ``Dataset.push_to_hub`` does; path in repo -> file."""
    num_shards = min(len(dataset), max(1, math.ceil(nbytes / max_shard_bytes)))
    shards = {}
    for index in range(num_shards):
        path_in_repo = f"{prefix}/{split}-{index:05d}-of-{num_shards:05d}.parquet"
        local = folder / path_in_repo
        local.parent.mkdir(parents=True, exist_ok=True)
        dataset.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(str(local))
        shards[path_in_repo] = local
    return shards


def _updated_card_data(
    existing: DatasetCardData,
    dataset: datasets.Dataset,
    nbytes: int,
    kind: DatasetKind,
    split: str,
    facts: dict[str, Any],
    license: str | None,
) -> DatasetCardData:
    """The README metadata after this push: other configs and splits kept, this config's entry replaced."""
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo
    from datasets.utils.metadata import MetadataConfigs

    card_data = DatasetCardData(**existing.to_dict())
    previous_files = MetadataConfigs.from_dataset_card_data(card_data).get(kind.name, {}).get("data_files", [])
    data_files = [entry for entry in previous_files if isinstance(entry, dict) and entry.get("split") != split]
    data_files.append({"split": split, "path": f"{kind.name}/{split}-*"})
    MetadataConfigs({kind.name: {"data_files": sorted(data_files, key=lambda e: e["split"])}}).to_dataset_card_data(
        card_data
    )

    previous_info = DatasetInfosDict.from_dataset_card_data(card_data).get(kind.name)
    splits = SplitDict()
    for other in (previous_info.splits or {}).values() if previous_info else []:
        if other.name != split:
            splits.add(other)
    splits.add(SplitInfo(name=split, num_bytes=nbytes, num_examples=len(dataset)))
    info = DatasetInfo(features=dataset.features, splits=splits)
    DatasetInfosDict({kind.name: info}).to_dataset_card_data(card_data)

    per_config = dict(card_data.get(CARD_METADATA_KEY) or {})
    per_config[kind.name] = {key: value for key, value in facts.items() if value is not None}
    card_data[CARD_METADATA_KEY] = dict(sorted(per_config.items()))
    tags = list(card_data.get("tags") or [])
    card_data["tags"] = list(dict.fromkeys([*tags, "jacobi-forcing", kind.name.replace("_", "-")]))
    card_data["task_categories"] = list(dict.fromkeys([*(card_data.get("task_categories") or []), "text-generation"]))
    if license is not None:
        card_data["license"] = license
    return card_data


def _existing_card_data(api: HfApi, repo_id: str, revision: str, files: tuple[str, ...]) -> DatasetCardData:
    if "README.md" not in files:
        return DatasetCardData()
    path = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
    return DatasetCard.load(path, repo_type="dataset").data


def push_dataset(
    dataset: datasets.Dataset,
    repo_id: str,
    *,
    kind: str | None = None,
    source_model: str | None = None,
    prompt_source: str | None = None,
    prompt_license: str | None = None,
    block_size: int | None = None,
    window: int | None = None,
    noise_schedule: str | None = None,
    recipe: Mapping[str, Any] | None = None,
    license: str | None = None,
    split: str = "train",
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> CommitInfo:
    """Push Jacobi trajectories or packed training sequences to the dataset repo ``repo_id``, with a card.

    The rows go to the config named after ``kind`` (``"trajectories"`` or ``"training_data"``; detected from
    the columns when not given), so both stages share one repo. The card records the schema, the block size
    (checked against the data), window and noise schedule, the source model, the prompt source and its
    licence, row and token counts, ``recipe`` (any further settings worth keeping) and how to load the data.

    Everything is checked before anything is uploaded (token, repo id, columns, block size), and the data and
    card land in a single commit. Returns the :class:`~huggingface_hub.CommitInfo` of that commit.
    """
    check_repo_id(repo_id)
    if not isinstance(split, str) or not re.fullmatch(r"\w+(\.\w+)*", split):
        raise HubPushError(f"split must be a name like 'train' or 'validation' (letters, digits, '_'), got {split!r}.")
    dataset_kind = detect_dataset_kind(list(dataset.column_names), kind)
    stats = dataset_statistics(dataset, dataset_kind)
    if block_size is not None and block_size != stats["block_size"]:
        raise HubPushError(f"block_size={block_size} was given but the rows hold blocks of {stats['block_size']}.")
    token = resolve_token(token)
    facts = {
        "source_model": source_model,
        "prompt_source": prompt_source,
        "prompt_license": prompt_license,
        "window": window,
        "noise_schedule": noise_schedule,
        **{str(key): yaml_safe(value) for key, value in (recipe or {}).items()},
        **stats,
    }
    nbytes = dataset.with_format("arrow")[:].nbytes  # of the rows selected, not of the whole backing table
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="jacobi-forcing-push-") as staging:
        shards = _write_shards(dataset, nbytes, Path(staging), dataset_kind.name, split, max_shard_bytes)
        head = open_repo(api, repo_id, "dataset", private=private)
        existing = _existing_card_data(api, head.repo_id, head.commit, head.files)
        card_data = _updated_card_data(existing, dataset, nbytes, dataset_kind, split, facts, license)
        card = render_dataset_card(card_data, head.repo_id)
        stale = [path for path in head.files if path.startswith(f"{dataset_kind.name}/{split}-")]
        return commit_in_one_go(
            api,
            head,
            {**shards, "README.md": str(card).encode()},
            delete=stale,
            commit_message=commit_message or f"Upload {dataset_kind.title.lower()} ({stats['rows']} rows)",
        )


def collection_facts(folder: str | Path) -> dict[str, Any]:
    """What ``collect_trajectories`` recorded in ``folder/manifest.json``, as keyword arguments of
    :func:`push_trajectories`: the source model (when it is a Hub id), the block size (checked against the rows)
    and a ``recipe`` with the generation settings and the weights fingerprint. ``{}`` for other folders.

    >>> push_trajectories(load_trajectories(folder), repo_id, **collection_facts(folder))  # doctest: +SKIP
    """
    from ..trajectories import FORMAT_NAME, MANIFEST_NAME

    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return {}
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_NAME:
        return {}
    recorded = ("max_new_tokens", "seed", "num_prompts", "prompt_column")
    recipe = {key: manifest[key] for key in recorded if key in manifest}
    draft_init = (manifest.get("decoding") or {}).get("draft_init")
    if draft_init:
        recipe["draft_init"] = draft_init
    if manifest.get("model_weights_sha256"):
        recipe["source_model_weights_sha256"] = manifest["model_weights_sha256"]
    facts: dict[str, Any] = {"recipe": recipe}
    if manifest.get("block_size"):
        facts["block_size"] = manifest["block_size"]
    if is_hub_id(manifest.get("model_name_or_path")):
        facts["source_model"] = manifest["model_name_or_path"]
    return facts


def push_trajectories(dataset: datasets.Dataset, repo_id: str, **kwargs: Any) -> CommitInfo:
    """:func:`push_dataset` for collected trajectories (config ``"trajectories"``)."""
    return push_dataset(dataset, repo_id, kind=TRAJECTORIES, **kwargs)


def push_training_data(dataset: datasets.Dataset, repo_id: str, **kwargs: Any) -> CommitInfo:
    """:func:`push_dataset` for packed training sequences (config ``"training_data"``)."""
    return push_dataset(dataset, repo_id, kind=TRAINING_DATA, **kwargs)
