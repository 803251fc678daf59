"""Collect a model's own Jacobi trajectories, batched and resumable, as a ``datasets.Dataset``.

Collection drives the project's one decoding engine (plain block Jacobi: one block in flight, no recycled
candidates, drafts initialised from the context like the reference) with a
:class:`~jacobi_forcing_hf.generation.hooks.TrajectoryRecorder`; there is no second Jacobi loop here.

Deliberate difference from the reference (REFERENCE §2.6): ``states[0]`` is the initial draft actually used,
so the noisiest state is available to the packer.

With ``output_dir`` the work is saved as it goes::

    output_dir/
      manifest.json                what was collected: model, tokenizer, prompts, block size... (checked)
      shards/batch-000000.parquet  one file per finished batch, written atomically (temp file + rename)
      state.json, data-*.arrow     the merged dataset (``datasets.load_from_disk(output_dir)``), once complete

Batches are fixed slices of the prompt set (batch ``b`` holds prompts ``b·B … b·B+B-1``) and the draft seed of
a batch depends only on ``seed`` and ``b``, so a resumed or multi-process run writes exactly the rows of one
uninterrupted run. Process ``i`` of ``N`` takes the batches ``b`` with ``b mod N == i``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .data.prompts import load_prompts, prompt_column, prompt_set_fingerprint, tokenize_prompts
from .data.validation import require_int

if TYPE_CHECKING:
    import datasets
    import torch

MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
FORMAT_NAME = "jacobi-forcing-trajectories"
FORMAT_VERSION = 1
# Initial drafts a collection can use: the reference's, and one that depends on the text alone.
COLLECTION_DRAFT_INITIALIZERS: tuple[str, ...] = ("random_context", "repeat_last")


def collection_decoding(draft_init: str = "random_context") -> dict[str, Any]:
    """How the engine decodes for collection.

    Plain block Jacobi (one block in flight, no recycled candidates); the tokens of a newly opened block come from
    ``draft_init`` (no draft in the prefill); a block holding EOS is still iterated to all ``n`` tokens.
    """
    return {
        "decoding": "jacobi",
        "num_blocks": 1,
        "pool_size": 0,
        "draft_init": draft_init,
        "prefill_draft": False,
        "finish_block_on_stop": True,
    }


# Manifest entries that must match for a run to add to an existing output_dir (the rest is informational).
_IDENTITY_KEYS: tuple[str, ...] = (
    "format_version",
    "model_config_sha256",
    "model_weights_sha256",
    "prompt_set_fingerprint",
    "prompt_tokens_sha256",
    "num_prompts",
    "block_size",
    "max_new_tokens",
    "batch_size",
    "seed",
    "decoding",
)


def trajectory_features() -> datasets.Features:
    """Column types of a trajectories dataset: one row per (prompt, block)."""
    from datasets import Features, List, Value

    return Features(
        {
            "prompt_id": Value("int64"),
            "block_index": Value("int32"),
            "prompt_length": Value("int32"),
            "prefix_ids": List(Value("int32")),
            "states": List(List(Value("int32"))),
            "output_ids": List(Value("int32")),
            "num_iterations": Value("int32"),
        }
    )


def collect_trajectories(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    *,
    block_size: int,
    max_new_tokens: int,
    batch_size: int = 8,
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    draft_init: str = "random_context",
    shard_index: int | None = None,
    num_shards: int | None = None,
    limit: int | None = None,
    split: str = "train",
    progress: bool = True,
) -> datasets.Dataset:
    """Greedy Jacobi trajectories of ``model`` on every prompt of ``dataset``, one row per (prompt, block).

    Args:
        model: a decoder-only transformers model; it is enabled for Jacobi decoding (idempotent).
        tokenizer: its tokenizer; chat prompts go through its chat template with
            ``add_generation_prompt=True``.
        dataset: prompts, anything :func:`jacobi_forcing_hf.data.prompts.load_prompts` accepts (a
            ``datasets.Dataset``, a path, a Hub id or ``"builtin:stdlib"``) with a ``messages`` or ``prompt``
            column.
        block_size: n, the tokens of a block.
        max_new_tokens: the most new tokens per prompt; a response has at most ``ceil(max_new_tokens / n)``
            blocks and its last block is always complete (n tokens), so up to ``n - 1`` more tokens may be
            generated.
        batch_size: prompts decoded together (left padded); rows advance and stop at EOS independently.
        output_dir: where to save shards and the manifest; a re-run with the same arguments skips finished
            batches.
        seed: seed of the random initial drafts (the fixed points never depend on it).
        draft_init: how the tokens of a newly opened block are drafted: ``"random_context"`` (the reference:
            tokens drawn from the prompt and the text so far) or ``"repeat_last"`` (the last known token repeated;
            the states then depend on the text alone). Decode a model trained on such trajectories with the same
            ``draft_init``.
        shard_index, num_shards: this process's share of the batches; by default the rank and world size of
            ``accelerate``'s ``PartialState`` (processes started by ``accelerate launch`` or ``torchrun``; one
            process otherwise).
        limit: collect only the first ``limit`` prompts.
        split: the split to read when ``dataset`` is a ``DatasetDict``, a folder or a Hub id.
        progress: show a progress bar over batches.

    Returns:
        This process's rows, sorted by ``prompt_id`` then ``block_index``, with the columns of
        :func:`trajectory_features`: ``prompt_id`` (index in the prompt set), ``block_index``,
        ``prompt_length``, ``prefix_ids`` (templated prompt, then the earlier blocks' fixed points),
        ``states`` (``states[0]`` the initial draft actually used, ``states[-1]`` the fixed point),
        ``output_ids`` (the fixed point) and ``num_iterations`` (recorded states before the fixed point). With
        one process and ``output_dir``, the merged result is also saved there
        (``datasets.load_from_disk(output_dir)``); with several, the process that finishes last saves it;
        :func:`load_trajectories` merges whatever is there.

    Raises:
        ValueError: on bad arguments, prompts that do not fit in the model's context, or an ``output_dir``
            collected with another model, tokenizer, prompt set, block size, ``max_new_tokens``, batch size,
            seed or ``draft_init``; all before any decoding.
    """
    from tqdm.auto import tqdm

    for name, value in (
        ("block_size", block_size),
        ("max_new_tokens", max_new_tokens),
        ("batch_size", batch_size),
    ):
        require_int(name, value, minimum=1)
    require_int("seed", seed, minimum=0)
    if draft_init not in COLLECTION_DRAFT_INITIALIZERS:
        raise ValueError(f"draft_init={draft_init!r} is not supported; use one of {COLLECTION_DRAFT_INITIALIZERS}.")
    if limit is not None:
        require_int("limit", limit, minimum=1)
    shard_index, num_shards = resolve_shard(shard_index, num_shards)

    prompts = load_prompts(dataset, split=split)
    if limit is not None and limit < len(prompts):
        prompts = prompts.select(range(limit))
    prompt_tokens = tokenize_prompts(prompts, tokenizer)
    num_blocks = math.ceil(max_new_tokens / block_size)
    _check_context(model, prompt_tokens, num_blocks * block_size)

    batches = [
        range(start, min(start + batch_size, len(prompt_tokens))) for start in range(0, len(prompt_tokens), batch_size)
    ]
    my_batches = [index for index in range(len(batches)) if index % num_shards == shard_index]
    store = None
    finished: set[int] = set()
    if output_dir is not None:
        settings = {
            "block_size": block_size,
            "max_new_tokens": max_new_tokens,
            "batch_size": batch_size,
            "seed": seed,
            "num_batches": len(batches),
        }
        manifest = _build_manifest(model, tokenizer, prompts, prompt_tokens, settings, draft_init)
        store = TrajectoryStore.open(output_dir, manifest)
        finished = store.finished_batches()

    from .generation.hooks import TrajectoryRecorder

    in_memory_rows: list[dict[str, Any]] = []
    todo = [index for index in my_batches if index not in finished]
    for batch_index in tqdm(todo, desc="Collecting trajectories", unit="batch", disable=not progress):
        prompt_ids = list(batches[batch_index])
        recorder = TrajectoryRecorder()
        _generate_batch(
            model,
            tokenizer,
            [prompt_tokens[i] for i in prompt_ids],
            block_size=block_size,
            max_new_tokens=num_blocks * block_size,
            draft_seed=_batch_seed(seed, batch_index),
            draft_init=draft_init,
            recorder=recorder,
        )
        rows = []
        for row, prompt_id in enumerate(prompt_ids):
            rows += _trajectory_rows(prompt_id, prompt_tokens[prompt_id], recorder.rows.get(row, []), block_size)
        if store is None:
            in_memory_rows += rows
        else:
            store.write_batch(batch_index, rows)

    if store is None:
        return _rows_to_dataset(in_memory_rows)
    if store.is_complete():
        store.save_merged()
    return store.load(batch_indices=my_batches)


def load_trajectories(output_dir: str | os.PathLike, *, allow_incomplete: bool = False) -> datasets.Dataset:
    """The trajectories saved in ``output_dir`` by every process, merged and sorted by (prompt_id,
    block_index).

    Raises:
        ValueError: when batches are missing (unless ``allow_incomplete``) or the folder holds no collection.
    """
    store = TrajectoryStore(Path(output_dir))
    manifest = store.read_manifest()
    if manifest is None:
        raise ValueError(f"{output_dir} holds no trajectories: {MANIFEST_NAME} is missing.")
    missing = store.missing_batches()
    if missing and not allow_incomplete:
        raise ValueError(
            f"{output_dir} is incomplete: {len(missing)} of {manifest['num_batches']} batches are missing "
            f"(first: {missing[:5]}). Re-run the collection with the same arguments to finish it, or pass "
            "allow_incomplete=True."
        )
    return store.load()


def resolve_shard(shard_index: int | None, num_shards: int | None) -> tuple[int, int]:
    """``(shard_index, num_shards)`` as given, or this process's rank and world size from ``accelerate``."""
    if shard_index is None and num_shards is None:
        state = distributed_state()
        return state.process_index, state.num_processes
    if shard_index is None or num_shards is None:
        raise ValueError("give both shard_index and num_shards, or neither (then accelerate decides).")
    require_int("num_shards", num_shards, minimum=1)
    require_int("shard_index", shard_index, minimum=0)
    if shard_index >= num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards={num_shards}), got {shard_index}.")
    return shard_index, num_shards


def distributed_state() -> Any:
    """``accelerate``'s ``PartialState`` of this process: rank, world size and device.

    On a machine without an accelerator it is asked for the CPU backend, so that processes started by ``torchrun``
    (which sets ``RANK``/``WORLD_SIZE``) are seen as several processes rather than one.
    """
    import torch
    from accelerate import PartialState

    accelerator = getattr(torch, "accelerator", None)
    has_accelerator = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return PartialState(cpu=not has_accelerator)


class TrajectoryStore:
    """The files of a collection folder: manifest, one Parquet file per finished batch, merged dataset."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.shards = directory / SHARDS_DIR

    @classmethod
    def open(cls, directory: str | os.PathLike, manifest: dict[str, Any]) -> TrajectoryStore:
        """Create the folder with ``manifest``, or check that an existing one has the same settings."""
        store = cls(Path(directory))
        existing = store.read_manifest()
        if existing is None:
            store.shards.mkdir(parents=True, exist_ok=True)
            _write_atomically(store.directory / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())
            return store
        differences = [
            f"{key}: {existing.get(key)!r} there, {manifest[key]!r} now"
            for key in _IDENTITY_KEYS
            if existing.get(key) != manifest[key]
        ]
        if differences:
            raise ValueError(
                f"{directory} holds trajectories collected with other settings ({'; '.join(differences)}). "
                "Use another output_dir, or the same model, tokenizer, prompts and arguments to resume."
            )
        store.shards.mkdir(parents=True, exist_ok=True)
        return store

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.directory / MANIFEST_NAME
        return json.loads(path.read_text()) if path.exists() else None

    def batch_path(self, batch_index: int) -> Path:
        return self.shards / f"batch-{batch_index:06d}.parquet"

    def finished_batches(self) -> set[int]:
        return {int(path.stem.split("-")[1]) for path in self.shards.glob("batch-*.parquet")}

    def missing_batches(self) -> list[int]:
        manifest = self.read_manifest() or {"num_batches": 0}
        return sorted(set(range(manifest["num_batches"])) - self.finished_batches())

    def is_complete(self) -> bool:
        return not self.missing_batches()

    def write_batch(self, batch_index: int, rows: list[dict[str, Any]]) -> None:
        """Write one batch's rows as a Parquet file, atomically: a killed run leaves it whole or absent."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=trajectory_features().arrow_schema)
        path = self.batch_path(batch_index)
        for stale in self.shards.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)  # left by a killed run; only this process writes this batch
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, path)

    def load(self, batch_indices: Sequence[int] | None = None) -> datasets.Dataset:
        """The rows of the given finished batches (all by default), sorted by (prompt_id, block_index)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        indices = sorted(self.finished_batches() if batch_indices is None else set(batch_indices))
        tables = [pq.read_table(self.batch_path(i)) for i in indices if self.batch_path(i).exists()]
        if not tables:
            return _rows_to_dataset([])
        table = pa.concat_tables(tables).sort_by([("prompt_id", "ascending"), ("block_index", "ascending")])
        return _table_to_dataset(table)

    def save_merged(self) -> None:
        """``save_to_disk`` all rows into the folder itself, file by file atomically (state.json last)."""
        merged = self.load()
        staging = Path(tempfile.mkdtemp(prefix=".merge-", dir=self.directory))
        try:
            merged.save_to_disk(str(staging))
            names = sorted(path.name for path in staging.iterdir())
            for name in sorted(names, key=lambda name: name == "state.json"):
                os.replace(staging / name, self.directory / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    *,
    block_size: int,
    max_new_tokens: int,
    draft_seed: int,
    draft_init: str,
    recorder: Any,
) -> None:
    import torch

    from . import enable_jacobi

    model = enable_jacobi(model)
    pad_token_id = _pad_token_id(model, tokenizer)
    input_ids, attention_mask = left_pad(prompts, pad_token_id, device=model.device)
    with torch.inference_mode():
        model.generate(
            input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_token_id,
            block_size=block_size,
            draft_seed=draft_seed,
            trajectory_recorder=recorder,
            **collection_decoding(draft_init),
        )


def _trajectory_rows(prompt_id: int, prompt: list[int], blocks: list[Any], block_size: int) -> list[dict[str, Any]]:
    """Rows of one prompt from its recorded blocks, checking them against the engine's contract."""
    rows = []
    prefix = list(prompt)
    for expected_index, block in enumerate(sorted(blocks, key=lambda block: block.block_index)):
        if block.block_index != expected_index or block.prefix_length != len(prefix):
            raise RuntimeError(
                f"prompt {prompt_id}: the engine recorded block {block.block_index} after "
                f"{block.prefix_length} tokens, expected block {expected_index} after {len(prefix)}."
            )
        if any(len(state) != block_size for state in block.states):
            raise RuntimeError(f"prompt {prompt_id}, block {block.block_index}: states are not {block_size} long.")
        fixed_point = list(block.states[-1])
        rows.append(
            {
                "prompt_id": prompt_id,
                "block_index": block.block_index,
                "prompt_length": len(prompt),
                "prefix_ids": list(prefix),
                "states": [list(state) for state in block.states],
                "output_ids": fixed_point,
                "num_iterations": block.num_iterations,
            }
        )
        prefix += fixed_point
    return rows


def left_pad(
    prompts: Sequence[Sequence[int]], pad_token_id: int, *, device: Any = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id lists of any lengths as one left-padded batch: ``(input_ids, attention_mask)`` on ``device``.

    >>> input_ids, attention_mask = left_pad([[5, 6], [7]], pad_token_id=0)
    >>> input_ids.tolist(), attention_mask.tolist()
    ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    import torch

    width = max(len(prompt) for prompt in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        attention_mask[row, width - len(prompt) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def _pad_token_id(model: Any, tokenizer: Any) -> int:
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        model.generation_config.pad_token_id,
        getattr(tokenizer, "eos_token_id", None),
    ):
        if candidate is not None:
            return int(candidate)
    raise ValueError("neither the tokenizer nor the generation config defines a pad or EOS token for left padding.")


def _check_context(model: Any, prompt_tokens: list[list[int]], generated_tokens: int) -> None:
    """Raise before any decoding if a prompt plus its generated blocks exceeds the model's context."""
    config = model.config.get_text_config()
    context = next(
        (
            getattr(config, name)
            for name in ("max_position_embeddings", "n_positions", "max_sequence_length")
            if isinstance(getattr(config, name, None), int)
        ),
        None,
    )
    if context is None:
        return
    too_long = [(i, len(tokens)) for i, tokens in enumerate(prompt_tokens) if len(tokens) + generated_tokens > context]
    if too_long:
        shown = ", ".join(f"prompt {i}: {length} tokens" for i, length in too_long[:5])
        raise ValueError(
            f"{len(too_long)} prompt(s) do not fit in the model's context of {context} tokens with "
            f"{generated_tokens} generated tokens (whole blocks): {shown}. Filter out long prompts or lower "
            "max_new_tokens."
        )


def _build_manifest(
    model: Any,
    tokenizer: Any,
    prompts: datasets.Dataset,
    prompt_tokens: list[list[int]],
    settings: dict[str, int],
    draft_init: str,
) -> dict[str, Any]:
    """What a collection folder holds; the ``_IDENTITY_KEYS`` of it must match for a run to add to the folder."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model_name_or_path": str(getattr(model, "name_or_path", "")),
        "model_config_sha256": model_config_fingerprint(model),
        "model_weights_sha256": model_weights_fingerprint(model),
        "tokenizer_name_or_path": str(getattr(tokenizer, "name_or_path", "")),
        "prompt_column": prompt_column(prompts),
        "prompt_set_fingerprint": prompt_set_fingerprint(prompts),
        "prompt_tokens_sha256": hashlib.sha256(json.dumps(prompt_tokens).encode()).hexdigest(),
        "num_prompts": len(prompt_tokens),
        **settings,
        "decoding": collection_decoding(draft_init),
    }


def model_config_fingerprint(model: Any) -> str:
    """SHA-256 of the model's config, without its path and the transformers version."""
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version"):
        config.pop(volatile, None)
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def model_weights_fingerprint(model: Any, samples_per_tensor: int = 256) -> str:
    """SHA-256 of every parameter's name, shape, dtype and a fixed sample of its values (cheap)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        count = min(samples_per_tensor, flat.numel())
        positions = torch.arange(count, device=flat.device) * (flat.numel() - 1) // max(count - 1, 1)
        sample = flat[positions].float().cpu().numpy()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(sample.tobytes())
    return digest.hexdigest()


def _batch_seed(seed: int, batch_index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{batch_index}".encode()).digest()[:8], "big") >> 1


def _rows_to_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    import pyarrow as pa

    rows = sorted(rows, key=lambda row: (row["prompt_id"], row["block_index"]))
    return _table_to_dataset(pa.Table.from_pylist(rows, schema=trajectory_features().arrow_schema))


def _table_to_dataset(table: Any) -> datasets.Dataset:
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(table))


def _write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
