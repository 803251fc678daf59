"""``jacobi-forcing train``: YAML configs parsed by TRL's TrlParser, a tiny end-to-end run, shipped configs valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from datasets import Dataset, DatasetDict
from trainer_testing import (
    packed_rows,
    single_thread,  # noqa: F401 (autouse fixture)
)
from trl import ModelConfig, TrlParser

from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.commands.train import TrainScriptArguments
from jacobi_forcing_hf.training.config import JacobiForcingConfig
from tiny_models import build_tiny_model

EXAMPLE_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "examples" / "configs").glob("*.yaml"))


@pytest.fixture
def tiny_setup(tmp_path):
    """A tiny model folder and a packed dataset folder with train and test splits, as the command reads them."""
    build_tiny_model("llama").save_pretrained(tmp_path / "model")
    DatasetDict(
        {"train": Dataset.from_list(packed_rows(6)), "test": Dataset.from_list(packed_rows(2, seed=1))}
    ).save_to_disk(str(tmp_path / "packed"))
    return tmp_path


def _write_config(path: Path, **fields) -> Path:
    path.write_text(yaml.safe_dump(fields))
    return path


def test_train_command_runs_from_a_yaml_config(tiny_setup, capsys):
    config = _write_config(
        tiny_setup / "config.yaml",
        model_name_or_path=str(tiny_setup / "model"),
        dataset_name=str(tiny_setup / "packed"),
        output_dir=str(tiny_setup / "out"),
        block_size=4,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        eval_strategy="steps",
        eval_steps=2,
        logging_steps=1,
        learning_rate=1.0e-3,
        dataloader_pin_memory=False,
    )
    # the command line overrides the file, as with `trl sft`
    assert main(["train", "--config", str(config), "--max_steps", "2", "--consistency_target", "hard"]) == 0
    assert (tiny_setup / "out" / "model.safetensors").exists()
    assert "Model saved to" in capsys.readouterr().out


def test_train_command_refuses_a_config_without_block_size(tiny_setup):
    config = _write_config(
        tiny_setup / "config.yaml", dataset_name=str(tiny_setup / "packed"), output_dir=str(tiny_setup / "out")
    )
    with pytest.raises(ValueError, match="block_size is required"):
        main(["train", "--config", str(config)])


def test_train_help_lists_the_jacobi_forcing_fields(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in ("--block_size", "--attention_context", "--consistency_target", "--dataset_name", "--config"):
        assert name in out


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda path: path.name)
def test_shipped_configs_are_valid(path, tmp_path):
    parser = TrlParser((TrainScriptArguments, JacobiForcingConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(
        args=["--config", str(path), "--output_dir", str(tmp_path)]
    )
    assert training_args.block_size == 16 and script_args.dataset_name
    assert model_args.model_name_or_path == "embedded"


def test_example_configs_exist():
    assert {path.name for path in EXAMPLE_CONFIGS} >= {"jacobi_forcing_n16.yaml", "jacobi_forcing_n16_lora.yaml"}
