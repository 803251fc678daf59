"""``jacobi-forcing train``: Jacobi Forcing post-training from a YAML config, parsed by TRL's ``TrlParser``.

Like ``trl sft``: every field of :class:`TrainScriptArguments`, ``JacobiForcingConfig`` and TRL's ``ModelConfig`` can
be set in the YAML file given with ``--config`` and overridden on the command line (``--learning_rate 2e-5``)::

    jacobi-forcing train --config examples/configs/jacobi_forcing_n16.yaml
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/train.py --config ...
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED_MODEL = "embedded"


@dataclass
class TrainScriptArguments:
    """Where the packed training rows come from."""

    dataset_name: str = field(
        metadata={
            "help": "Packed rows (input_ids, prompt_length): a folder written by `jacobi-forcing pack` / "
            "Dataset.save_to_disk, a .jsonl/.json/.parquet file, or a Hub dataset id."
        },
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_test_split: str = field(
        default="test",
        metadata={"help": "Split for evaluation and TPF measurement, used when the dataset has it."},
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    # Everything after `train` goes to TrlParser untouched ('+' as prefix char keeps argparse off the '--' flags),
    # so `--help` lists every training field and `--config` works exactly as in `trl sft`.
    parser = subparsers.add_parser(
        "train",
        help="post-train a model with Jacobi Forcing (JacobiForcingTrainer) from a YAML config",
        prefix_chars="+",
        add_help=False,
    )
    parser.add_argument("arguments", nargs="*", help="--config FILE.yaml and --field value overrides; see --help")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from trl import ModelConfig, TrlParser, get_peft_config

    from ..training.config import JacobiForcingConfig
    from ..training.trainer import JacobiForcingTrainer

    parser = TrlParser(
        (TrainScriptArguments, JacobiForcingConfig, ModelConfig),
        prog="jacobi-forcing train",
        description="Jacobi Forcing post-training. `--config FILE.yaml` sets any of the fields below; flags given "
        "on the command line override the file.",
    )
    script_args, training_args, model_args = parser.parse_args_and_config(args=args.arguments)
    datasets = load_packed_dataset(script_args.dataset_name)
    train_dataset = _split(datasets, script_args.dataset_train_split, required=True)
    eval_dataset = _split(datasets, script_args.dataset_test_split, required=False)
    model, tokenizer = load_model(model_args, trust_remote_code=training_args.trust_remote_code)
    trainer = JacobiForcingTrainer(
        model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    trainer.accelerator.print(f"Model saved to {training_args.output_dir}")
    return 0


def load_packed_dataset(name: str) -> Any:
    """A ``Dataset``/``DatasetDict`` from a ``save_to_disk`` folder, a JSON(L)/Parquet file, or a Hub id."""
    import datasets

    path = Path(name).expanduser()
    if path.is_dir():
        return datasets.load_from_disk(str(path))
    if path.is_file():
        builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}.get(path.suffix)
        if builder is None:
            raise ValueError(f"dataset_name {name!r}: unsupported file type; use .jsonl, .json, .parquet or a folder")
        return datasets.load_dataset(builder, data_files=str(path))
    return datasets.load_dataset(name)


def _split(dataset: Any, split: str, *, required: bool) -> Any:
    import datasets

    if isinstance(dataset, datasets.Dataset):
        return dataset if required else None
    if split in dataset:
        return dataset[split]
    if required:
        raise ValueError(f"the dataset has no split {split!r} (it has {sorted(dataset)}); set dataset_train_split")
    return None


def load_model(model_args: Any, *, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer): the embedded SmolLM2 for ``embedded`` (or no model), else ``from_pretrained``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = model_args.dtype if model_args.dtype not in (None, "auto") else "float32"
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    attn_implementation = model_args.attn_implementation or "sdpa"
    name = model_args.model_name_or_path
    if name in (None, EMBEDDED_MODEL):
        from ..models import load_default_model

        model, tokenizer = load_default_model(dtype=dtype, attn_implementation=attn_implementation)
        return model.train(), tokenizer
    model = AutoModelForCausalLM.from_pretrained(
        name,
        revision=model_args.model_revision,
        dtype=dtype,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name, revision=model_args.model_revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError):  # a model folder without a tokenizer: packed rows are token ids already
        tokenizer = None
    return model.train(), tokenizer
