"""Load an evaluation dataset with ``datasets``: a local file or folder, or a Hub id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import EvaluationInputError

# file suffix -> datasets builder
_FILE_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
}


def looks_like_local_path(source: str) -> bool:
    """True for strings that can only mean a local path (absolute, ``./``, ``../``, ``~``, or two slashes).

    ``org/name`` is read as a Hub id unless such a folder exists.
    """
    return source.startswith(("/", "./", "../", "~", ".\\")) or source.count("/") >= 2 or source in (".", "..")


def load_rows(source: str, *, config: str | None = None, split: str = "test") -> list[dict[str, Any]]:
    """The rows of ``source`` as dictionaries, in file order.

    ``source`` is a file (``.json``, ``.jsonl``, ``.parquet``, ``.csv``, ``.arrow``, optionally ``.gz``; its
    single split is used whatever ``split`` says), a folder saved with ``Dataset.save_to_disk`` or holding
    data files, or a Hub dataset id (``config`` and ``split`` select the part).

    Raises:
        EvaluationInputError: the path does not exist, or the dataset cannot be loaded.
    """
    import datasets

    path = Path(source).expanduser()
    try:
        if path.is_file():
            dataset = datasets.load_dataset(_builder_for(path), data_files=str(path), split="train")
        elif path.is_dir():
            dataset = _load_folder(path, config, split)
        elif looks_like_local_path(source):
            raise EvaluationInputError(f"dataset path {source!r} does not exist.")
        else:
            dataset = datasets.load_dataset(source, config, split=split)
    except EvaluationInputError:
        raise
    except Exception as error:  # datasets raises many types (FileNotFoundError, DatasetNotFoundError, HTTP, ...)
        raise EvaluationInputError(
            f"could not load the dataset {source!r} (config={config!r}, split={split!r}): {error}. "
            "Pass a local file or folder, or a Hub dataset id reachable from this machine."
        ) from error
    return list(dataset)


def _builder_for(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst"):
        suffixes = suffixes[:-1]
    if not suffixes or suffixes[-1] not in _FILE_BUILDERS:
        raise EvaluationInputError(
            f"cannot read {path}: unknown file type; use one of {sorted(_FILE_BUILDERS)} (optionally .gz)."
        )
    return _FILE_BUILDERS[suffixes[-1]]


def _load_folder(path: Path, config: str | None, split: str):
    import datasets

    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise EvaluationInputError(f"{path} has no split {split!r}; it has {sorted(loaded)}.")
            return loaded[split]
        return loaded
    return datasets.load_dataset(str(path), config, split=split)
