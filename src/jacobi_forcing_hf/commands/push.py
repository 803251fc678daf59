"""``jacobi-forcing push``: share data (a ``save_to_disk`` folder) or a checkpoint folder on the Hub."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_REFUSED = 2  # checked before uploading: nothing was sent
EXIT_UPLOAD_FAILED = 1  # the Hub refused or failed the commit: the repo is unchanged


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push",
        help="push trajectories, training data or a checkpoint to the Hub (one commit, with a card)",
        description="Push to the Hugging Face Hub. Needs a token: `hf auth login` or HF_TOKEN.",
    )
    kinds = parser.add_subparsers(dest="what", metavar="WHAT", required=True)

    dataset = kinds.add_parser("dataset", help="a dataset saved with Dataset.save_to_disk")
    dataset.add_argument("path", type=Path, help="folder written by save_to_disk")
    dataset.add_argument("repo_id", help="dataset repo, e.g. your-name/smollm2-jacobi-data")
    dataset.add_argument(
        "--kind", choices=("trajectories", "training_data"), help="config to push to (default: from the columns)"
    )
    dataset.add_argument("--source-model", help="Hub id of the model that produced the trajectories")
    dataset.add_argument("--prompt-source", help="Hub id or description of the prompts")
    dataset.add_argument("--prompt-license", help="licence of the prompts, e.g. mit")
    dataset.add_argument("--window", type=int, help="noise window w of the packing")
    dataset.add_argument("--noise-schedule", help="noise schedule of the packing, e.g. progressive")
    dataset.add_argument("--license", help="licence of the pushed data")
    dataset.add_argument("--split", default="train", help="split name (and the split taken from a DatasetDict)")
    _add_common(dataset)
    dataset.set_defaults(handler=run)

    checkpoint = kinds.add_parser("checkpoint", help="a folder written by save_pretrained (model or PEFT adapter)")
    checkpoint.add_argument("path", type=Path, help="checkpoint folder (needs generation_config.json)")
    checkpoint.add_argument("repo_id", help="model repo, e.g. your-name/smollm2-jacobi-forcing")
    checkpoint.add_argument("--base-model", help="Hub id of the model it was trained from")
    checkpoint.add_argument("--results", type=Path, help='JSON file: {"humaneval": {"pass@1": 0.4, "tpf": 2.9}}')
    checkpoint.add_argument("--hardware", help="where speeds in --results were measured, e.g. '1x H100'")
    checkpoint.add_argument("--training-config", type=Path, help="JSON or YAML file with the training settings")
    checkpoint.add_argument("--dataset", action="append", default=[], help="Hub id of training data (repeatable)")
    checkpoint.add_argument("--tag", action="append", default=[], help="extra card tag (repeatable)")
    checkpoint.add_argument("--license", help="licence of the model")
    knobs = checkpoint.add_argument_group("Jacobi decoding defaults written to generation_config.json")
    knobs.add_argument("--decoding", choices=("jacobi", "jacobi_mr"))
    knobs.add_argument("--block-size", type=int, help="n, tokens per block")
    knobs.add_argument("--num-blocks", type=int, help="K, blocks in flight")
    knobs.add_argument("--pool-size", type=int, help="recycled candidates per forward")
    knobs.add_argument("--activation-ratio", type=float, help="r, spawn ratio")
    _add_common(checkpoint)
    checkpoint.set_defaults(handler=run)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--private", action="store_true", default=None, help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: the logged-in user's)")
    parser.add_argument("--commit-message", help="message of the commit")


def _read_mapping(path: Path, option: str) -> dict[str, Any]:
    import yaml

    from ..hub import HubPushError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise HubPushError(f"{option} {path}: cannot read it ({error.strerror}).") from None
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise HubPushError(f"{option} {path} must hold a mapping, got {type(data).__name__}.")
    return data


def _load_dataset(path: Path, split: str):
    """A collection folder of ``jacobi-forcing collect`` (through its manifest), else a ``save_to_disk`` folder."""
    import datasets

    from ..hub import HubPushError
    from ..trajectories import MANIFEST_NAME, load_trajectories

    if (path / MANIFEST_NAME).is_file():
        try:
            return load_trajectories(path)
        except ValueError as error:
            raise HubPushError(str(error)) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as error:
        raise HubPushError(f"{path} is not a dataset saved with save_to_disk: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise HubPushError(f"{path} holds splits {sorted(loaded)}; choose one with --split.")
        return loaded[split]
    return loaded


def _push_dataset(args: argparse.Namespace):
    from ..hub import collection_facts, push_dataset

    dataset = _load_dataset(args.path, args.split)
    facts = collection_facts(args.path)  # what `jacobi-forcing collect` recorded; the options below win
    explicit = {
        "source_model": args.source_model,
        "prompt_source": args.prompt_source,
        "prompt_license": args.prompt_license,
        "window": args.window,
        "noise_schedule": args.noise_schedule,
        "license": args.license,
        "commit_message": args.commit_message,
    }
    facts.update({name: value for name, value in explicit.items() if value is not None})
    return push_dataset(
        dataset, args.repo_id, kind=args.kind, split=args.split, private=args.private, token=args.token, **facts
    )


def _push_checkpoint(args: argparse.Namespace):
    from ..hub import push_checkpoint

    knobs = {
        "decoding": args.decoding,
        "block_size": args.block_size,
        "num_blocks": args.num_blocks,
        "pool_size": args.pool_size,
        "activation_ratio": args.activation_ratio,
    }
    optional = {"commit_message": args.commit_message} if args.commit_message else {}
    return push_checkpoint(
        args.path,
        None,
        args.repo_id,
        results=_read_mapping(args.results, "--results") if args.results else None,
        training_config=_read_mapping(args.training_config, "--training-config") if args.training_config else None,
        base_model=args.base_model,
        hardware=args.hardware,
        datasets=args.dataset,
        tags=args.tag,
        license=args.license,
        generation_defaults={name: value for name, value in knobs.items() if value is not None},
        private=args.private,
        token=args.token,
        **optional,
    )


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import HubPushError

    try:
        commit = _push_dataset(args) if args.what == "dataset" else _push_checkpoint(args)
    except HubPushError as error:
        print(f"jacobi-forcing push: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except HfHubHTTPError as error:
        print(f"jacobi-forcing push: the Hub refused the upload; the repo is unchanged. {error}", file=sys.stderr)
        return EXIT_UPLOAD_FAILED
    print(f"pushed {args.path} in one commit: {commit.commit_url}")
    return 0
