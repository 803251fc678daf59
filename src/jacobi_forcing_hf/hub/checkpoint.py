"""Share a checkpoint so that anyone can run it with Jacobi decoding, with or without this package.

A pushed checkpoint holds the weights (full model or PEFT adapter) and the tokenizer, a ``generation_config.json``
whose Jacobi knobs (``decoding``, ``block_size``, ``num_blocks``, ``pool_size``, ``activation_ratio``) become the
defaults of ``generate``, the engine as a ``custom_generate/`` folder, and a model card built from the run.

Two entry points share the same pieces:

* :func:`push_checkpoint` for any model or checkpoint folder: checks everything, then uploads in one commit;
* :func:`prepare_checkpoint_folder` writes the card, the generation config and ``custom_generate/`` into a
  checkpoint folder; ``JacobiForcingTrainer.create_model_card`` calls it, so that ``trainer.push_to_hub()``
  (which uploads the output folder in one commit) shares the same files.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, HfApi, ModelCard

from .cards import build_model_card, is_hub_id
from .repo import HubPushError, check_repo_id, commit_in_one_go, open_repo, resolve_token

SHARED_KNOBS: tuple[str, ...] = ("decoding", "block_size", "num_blocks", "pool_size", "activation_ratio")
GENERATED_FILES: tuple[str, ...] = ("README.md", "generation_config.json")
CUSTOM_GENERATE_DIR = "custom_generate"
_MODEL_CONFIGS = ("config.json", "adapter_config.json")
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model", "vocab.json")
_WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth")


def jacobi_generation_config(generation_config: Any = None, **knobs: Any):
    """A copy of ``generation_config`` whose Jacobi knobs survive ``save_pretrained``/``from_pretrained``.

    The five shared knobs are always written: a value in ``knobs`` wins, then the value already on the
    config, then the engine's default (:class:`~jacobi_forcing_hf.JacobiConfig`). Other engine knobs are
    written when given, except ``ngram_table``, a local file that is left out. ``_from_model_config`` is cleared,
    or transformers would drop the knobs on reload.

    Raises:
        HubPushError: a knob is unknown or outside its allowed values.
    """
    from transformers import GenerationConfig

    from ..generation.config import JacobiConfig

    config = copy.deepcopy(generation_config) if generation_config is not None else GenerationConfig()
    try:
        resolved = JacobiConfig.resolve(config, **knobs)
    except ValueError as error:
        raise HubPushError(f"generation_defaults: {error}") from None
    for name in JacobiConfig.knob_names():
        if name in SHARED_KNOBS or knobs.get(name) is not None:
            setattr(config, name, getattr(resolved, name))
    if hasattr(config, "ngram_table"):  # a path on this machine: the repo does not carry the table
        delattr(config, "ngram_table")
    config._from_model_config = False
    return config


@dataclasses.dataclass(frozen=True)
class CheckpointFolder:
    """What the card needs to know about a saved checkpoint."""

    path: Path
    is_adapter: bool
    base_model: str | None
    has_tokenizer: bool
    has_chat_template: bool


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise HubPushError(f"{path} is not readable JSON: {error}") from None


def inspect_checkpoint_folder(folder: str | Path, *, require_generation_config: bool = True) -> CheckpointFolder:
    """Check that ``folder`` is a saved model or adapter and describe it; refuse an incomplete folder."""
    path = Path(folder)
    if not path.is_dir():
        raise HubPushError(f"Checkpoint folder {str(path)!r} does not exist or is not a folder.")
    if not any((path / name).is_file() for name in _MODEL_CONFIGS):
        raise HubPushError(
            f"{str(path)!r} is not a saved model: it has neither config.json nor adapter_config.json. "
            "Save it with model.save_pretrained(folder) first."
        )
    if require_generation_config and not (path / "generation_config.json").is_file():
        raise HubPushError(
            f"{str(path)!r} has no generation_config.json, which carries the Jacobi decoding defaults. "
            "Push the model object instead (push_checkpoint(model, tokenizer, repo_id)), or save one with "
            "jacobi_generation_config(model.generation_config).save_pretrained(folder)."
        )
    is_adapter = (path / "adapter_config.json").is_file()
    base_model = _read_json(path / "adapter_config.json").get("base_model_name_or_path") if is_adapter else None
    return CheckpointFolder(
        path=path,
        is_adapter=is_adapter,
        base_model=base_model,
        has_tokenizer=any((path / name).is_file() for name in _TOKENIZER_FILES),
        has_chat_template=_folder_has_chat_template(path),
    )


def _folder_has_chat_template(path: Path) -> bool:
    tokenizer_config = path / "tokenizer_config.json"
    return (path / "chat_template.jinja").is_file() or (
        tokenizer_config.is_file() and bool(_read_json(tokenizer_config).get("chat_template"))
    )


def _is_adapter_model(model: Any) -> bool:
    """A PEFT model, or a transformers model with an adapter loaded: ``save_pretrained`` saves the adapter only."""
    peft_config = getattr(model, "peft_config", None)
    return isinstance(peft_config, Mapping) and bool(peft_config)


def _model_base_name(model: Any) -> str | None:
    """The Hub id a model object was loaded from, if any (for a PEFT model: its base model)."""
    if _is_adapter_model(model):
        base = getattr(next(iter(model.peft_config.values())), "base_model_name_or_path", None)
        if base:
            return base
    name = getattr(model, "name_or_path", None)
    return name if is_hub_id(name) else None


def prepare_checkpoint_folder(
    folder: str | Path,
    repo_id: str,
    *,
    model: Any = None,
    tokenizer: Any = None,
    output_dir: str | Path | None = None,
    base_model: str | None = None,
    training_config: Any = None,
    results: Mapping[str, Mapping[str, float]] | None = None,
    hardware: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    license: str | None = None,
    generation_defaults: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Write ``README.md``, ``generation_config.json`` (with the Jacobi knobs) and ``custom_generate/``.

    The files go into ``output_dir`` (default: ``folder``). Without ``model``, ``folder`` must be a saved
    checkpoint (``save_pretrained``) and everything is read from it; with ``model`` (a trainer's model, which
    may not be saved yet), the generation config, adapter status and base model come from the model object.
    ``tokenizer`` (default: the folder's tokenizer files) tells whether the usage snippet can use a chat
    template. ``generation_defaults`` overrides knobs (e.g. ``{"block_size": 32}``). Returns the card.

    ``JacobiForcingTrainer.create_model_card`` calls it, so ``trainer.push_to_hub()`` shares these files.
    """
    from transformers import GenerationConfig

    from ..generation.export import write_custom_generate_folder

    folder = Path(folder)
    if model is None:
        info = inspect_checkpoint_folder(folder)
        base_config = GenerationConfig.from_pretrained(folder)
        is_adapter, loaded_from = info.is_adapter, info.base_model
    else:
        base_config = model.generation_config
        is_adapter, loaded_from = _is_adapter_model(model), _model_base_name(model)
    if tokenizer is not None:
        has_chat_template = bool(getattr(tokenizer, "chat_template", None))
    else:
        has_chat_template = folder.is_dir() and _folder_has_chat_template(folder)
    generation_config = jacobi_generation_config(base_config, **dict(generation_defaults or {}))
    card = build_model_card(
        repo_id,
        generation_defaults={name: getattr(generation_config, name) for name in SHARED_KNOBS},
        base_model=base_model or loaded_from,
        training_config=training_config,
        results=results,
        hardware=hardware,
        datasets=datasets,
        tags=tags,
        license=license,
        is_adapter=is_adapter,
        has_chat_template=has_chat_template,
    )
    target = Path(output_dir) if output_dir is not None else folder
    target.mkdir(parents=True, exist_ok=True)
    generation_config.save_pretrained(target)
    write_custom_generate_folder(target)
    card.save(target / "README.md")
    return card


def _folder_files(folder: Path) -> dict[str, Path]:
    """The files of a checkpoint folder worth pushing (path in repo -> file), as ``Trainer.push_to_hub``
    chooses them: no hidden or ``_``-prefixed files, no ``checkpoint-*`` or ``runs/`` folders, and not the
    files this module generates."""
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        parts = relative.split("/")
        skipped = (
            any(part.startswith((".", "_")) for part in parts)
            or parts[0].startswith("checkpoint-")
            or parts[0] in ("runs", CUSTOM_GENERATE_DIR)
            or relative in GENERATED_FILES
        )
        if path.is_file() and not skipped:
            files[relative] = path
    return files


def _is_replaceable(path_in_repo: str) -> bool:
    """Files of an earlier push that a new push replaces: weights, adapters and the engine folder."""
    return path_in_repo.startswith(f"{CUSTOM_GENERATE_DIR}/") or path_in_repo.endswith(_WEIGHT_SUFFIXES)


def push_checkpoint(
    model_or_folder: Any,
    tokenizer: Any,
    repo_id: str,
    results: Mapping[str, Mapping[str, float]] | None = None,
    training_config: Any = None,
    *,
    base_model: str | None = None,
    hardware: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    license: str | None = None,
    generation_defaults: Mapping[str, Any] | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload Jacobi Forcing checkpoint",
) -> CommitInfo:
    """Push a model (full weights or a PEFT adapter) or a saved checkpoint folder to ``repo_id``, ready for
    Jacobi decoding, in one commit.

    The repo receives the weights, the tokenizer (``tokenizer``, or the folder's own), a
    ``generation_config.json`` carrying the Jacobi knobs (see :func:`jacobi_generation_config`;
    ``generation_defaults`` overrides them), the ``custom_generate/`` folder of the engine and a model card
    (:func:`~jacobi_forcing_hf.hub.build_model_card`) with ``results`` as model-index eval results and the
    ``training_config`` recipe. Weights and ``custom_generate/`` files of an earlier push that this one does
    not replace are deleted in the same commit.

    Everything is checked before the upload starts: token, repo id, an incomplete checkpoint folder (no
    ``config.json``/``adapter_config.json``, no ``generation_config.json``), a missing tokenizer, bad knobs or
    results. Returns the :class:`~huggingface_hub.CommitInfo` of the commit.
    """
    check_repo_id(repo_id)
    token = resolve_token(token)
    is_folder = isinstance(model_or_folder, (str, Path))
    if is_folder:
        inspect_checkpoint_folder(model_or_folder)
    elif not hasattr(model_or_folder, "save_pretrained") or not hasattr(model_or_folder, "generation_config"):
        raise HubPushError(
            "model_or_folder must be a transformers/PEFT model or the path of a saved checkpoint folder, "
            f"got {type(model_or_folder).__name__}."
        )
    api = HfApi(token=token)
    if "/" not in repo_id:
        repo_id = f"{api.whoami()['name']}/{repo_id}"
    with tempfile.TemporaryDirectory(prefix="jacobi-forcing-push-") as staging:
        if is_folder:
            source = Path(model_or_folder)
        else:
            source = Path(staging) / "model"
            model_or_folder.save_pretrained(source)
        files = _folder_files(source)
        if tokenizer is not None:
            tokenizer.save_pretrained(Path(staging) / "tokenizer")
            files.update(_folder_files(Path(staging) / "tokenizer"))
        if not any(name in files for name in _TOKENIZER_FILES):
            raise HubPushError(
                "No tokenizer to push: pass tokenizer=... (the checkpoint has no tokenizer files either); "
                "a shared checkpoint is unusable without it."
            )
        extras = Path(staging) / "extras"
        prepare_checkpoint_folder(
            source,
            repo_id,
            model=None if is_folder else model_or_folder,
            tokenizer=tokenizer,
            output_dir=extras,
            base_model=base_model,
            training_config=training_config,
            results=results,
            hardware=hardware,
            datasets=datasets,
            tags=tags,
            license=license,
            generation_defaults=generation_defaults,
        )
        files.update(_files_under(extras))
        head = open_repo(api, repo_id, "model", private=private)
        return commit_in_one_go(
            api,
            head,
            files,
            delete=[path for path in head.files if _is_replaceable(path)],
            commit_message=commit_message,
        )


def _files_under(folder: Path) -> dict[str, Path]:
    return {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*")) if path.is_file()}
