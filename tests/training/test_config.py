"""JacobiForcingConfig: reference defaults, CPU-safe precision, and clear errors for settings that cannot work."""

from __future__ import annotations

import pytest
import torch

from jacobi_forcing_hf import JacobiForcingConfig


def test_defaults_are_the_reference_recipe(tmp_path):
    config = JacobiForcingConfig(output_dir=str(tmp_path), block_size=16)
    assert (config.attention_context, config.ar_loss_weight, config.consistency_loss_weight) == ("noisy", 10.0, 1.0)
    assert (config.consistency_normalization, config.consistency_target) == ("mean/T", "soft")
    assert config.include_prompt_in_ar and config.keep_last_offset and config.distill_temperature == 1.0
    assert (config.learning_rate, config.lr_scheduler_type, config.warmup_steps) == (1e-5, "cosine", 0.03)
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 4
    assert config.num_train_epochs == 1 and config.weight_decay == 0.0
    # packed rows reach the collator untouched
    assert config.remove_unused_columns is False and config.max_length is None
    assert config.dataset_kwargs == {"skip_prepare_dataset": True}
    assert config.bf16 == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "block_size is required"),
        ({"block_size": 0}, "block_size must be a positive integer"),
        ({"block_size": 4, "attention_context": "window"}, r"attention_context must be one of \['noisy', 'clean'\]"),
        ({"block_size": 4, "consistency_normalization": "sum"}, r"consistency_normalization must be one of"),
        ({"block_size": 4, "consistency_target": "kl"}, r"consistency_target must be one of \['soft', 'hard'\]"),
        ({"block_size": 4, "ar_loss_weight": -1.0}, "ar_loss_weight must be >= 0"),
        ({"block_size": 4, "base_kl_weight": -0.5}, "base_kl_weight must be >= 0"),
        ({"block_size": 4, "ar_loss_weight": 0.0, "consistency_loss_weight": 0.0}, "nothing to train"),
        ({"block_size": 4, "distill_temperature": 0.0}, "distill_temperature must be > 0"),
        ({"block_size": 4, "tpf_eval_steps": 0}, "tpf_eval_steps must be None or >= 1"),
        ({"block_size": 4, "packing": True}, "packing=True is not supported"),
        ({"block_size": 4, "padding_free": True}, "padding_free=True is not supported"),
        ({"block_size": 4, "max_length": 1024}, "max_length=1024 is not supported"),
        ({"block_size": 4, "remove_unused_columns": True}, "would drop the 'prompt_length' column"),
        ({"block_size": 4, "dataset_kwargs": {"skip_prepare_dataset": False}}, "skip_prepare_dataset=True"),
        ({"block_size": 4, "assistant_only_loss": True}, "assistant_only_loss is an SFT option"),
        ({"block_size": 4, "eos_token": "<|im_end|>"}, "eos_token is not supported: packed rows are token ids"),
    ],
)
def test_bad_settings_are_refused(settings, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        JacobiForcingConfig(output_dir=str(tmp_path), **settings)


def test_json_dataset_kwargs_from_the_command_line_are_parsed(tmp_path):
    config = JacobiForcingConfig(
        output_dir=str(tmp_path), block_size=4, dataset_kwargs='{"skip_prepare_dataset": true}'
    )
    assert config.dataset_kwargs == {"skip_prepare_dataset": True}
