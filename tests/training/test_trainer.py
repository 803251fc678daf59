"""JacobiForcingTrainer end to end on tiny models: learning, gradient accumulation, checkpointing, bf16, LoRA,
resume, tokenizer handling, evaluation, TPF logging and errors raised before training starts."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from trainer_testing import (
    SGD_SETTINGS,
    assert_same_updates,
    fast_config,
    make_trainer,
    packed_rows,
    sgd_rows,
    single_thread,  # noqa: F401 (autouse fixture)
    updates_since,
)
from transformers import TrainerCallback

import jacobi_forcing_hf as jf
from jacobi_forcing_hf import JacobiForcingDataCollator, JacobiForcingTrainer, TPFCallback
from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, VOCAB_SIZE, build_tiny_model


def _parameters(model) -> dict[str, torch.Tensor]:
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def _assert_same_parameters(first: dict, second: dict, **tolerance) -> None:
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], **tolerance, msg=name)


def _step_logs(trainer) -> list[dict]:
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def test_twenty_steps_lower_the_loss_and_log_both_terms(tmp_path):
    rows = packed_rows(8)
    trainer = make_trainer(tmp_path, rows=rows, max_steps=20)
    before = trainer.evaluate(Dataset.from_list(rows))
    trainer.train()
    after = trainer.evaluate(Dataset.from_list(rows))
    assert after["eval_loss"] < 0.7 * before["eval_loss"]
    assert after["eval_ar_loss"] < before["eval_ar_loss"]
    logs = _step_logs(trainer)
    assert len(logs) == 20
    for entry in logs:  # one micro-batch per step: the logged terms recombine into the logged loss
        assert entry["loss"] == pytest.approx(10 * entry["ar_loss"] + entry["consistency_loss"], rel=1e-4)


def _sgd_run(output_dir, **overrides):
    """Two SGD steps on rows of different lengths: the trainer and the parameter updates it made."""
    trainer = make_trainer(output_dir, rows=sgd_rows(), **{**SGD_SETTINGS, **overrides})
    initial = _parameters(trainer.model)
    trainer.train()
    return trainer, updates_since(initial, _parameters(trainer.model))


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    """bs=2 × GA=1 and bs=1 × GA=2 see the same sequences per optimizer step (one of them padded in the larger
    batch): the updates, the logged losses and the logged loss terms agree."""
    large_batch, large_updates = _sgd_run(tmp_path / "bs2", per_device_train_batch_size=2)
    accumulated, accumulated_updates = _sgd_run(
        tmp_path / "ga2", per_device_train_batch_size=1, gradient_accumulation_steps=2
    )
    assert_same_updates(large_updates, accumulated_updates)
    for first, second in zip(_step_logs(large_batch), _step_logs(accumulated), strict=True):
        for key in ("loss", "ar_loss", "consistency_loss"):
            assert first[key] == pytest.approx(second[key], rel=1e-5), key


def test_gradient_checkpointing_trains_identically(tmp_path):
    _, plain = _sgd_run(tmp_path / "plain")
    trainer, checkpointed = _sgd_run(tmp_path / "checkpointed", activation_checkpointing=True)
    assert trainer.model.is_activation_checkpointing
    assert_same_updates(plain, checkpointed)


def test_bf16_autocast_on_cpu_trains(tmp_path):
    fp32, _ = _sgd_run(tmp_path / "fp32")
    bf16, _ = _sgd_run(tmp_path / "bf16", bf16=True, use_cpu=True)
    assert bf16.accelerator.mixed_precision == "bf16"
    fp32_losses = [entry["loss"] for entry in _step_logs(fp32)]
    bf16_losses = [entry["loss"] for entry in _step_logs(bf16)]
    assert all(torch.isfinite(torch.tensor(bf16_losses)))
    assert bf16_losses != fp32_losses  # autocast really ran in bf16 ...
    assert bf16_losses == pytest.approx(fp32_losses, rel=0.05)  # ... and computed the same loss


def test_bf16_weights_get_a_bf16_mask(tmp_path):
    model = build_tiny_model("llama").to(torch.bfloat16)
    trainer = make_trainer(tmp_path, model=model)
    batch = trainer.data_collator(packed_rows(2))
    assert batch["attention_mask"].dtype == torch.bfloat16
    with torch.no_grad():
        _, losses = trainer.forward_losses(model, batch)
    assert torch.isfinite(losses.total).all()


def test_lora_via_peft_config_trains_only_the_adapters(tmp_path):
    """LoRA with activation checkpointing; the TPF callback decodes through the PEFT wrapper."""
    model = build_tiny_model("llama")
    base_before = _parameters(model)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = JacobiForcingTrainer(
        model.train(),
        args=fast_config(
            tmp_path,
            max_steps=3,
            activation_checkpointing=True,
            tpf_eval_steps=3,
            tpf_num_prompts=1,
            tpf_max_new_tokens=6,
        ),
        train_dataset=Dataset.from_list(packed_rows(6)),
        eval_dataset=Dataset.from_list(packed_rows(1, seed=4)),
        peft_config=lora,
    )
    trainer.train()
    tpf_values = [entry["tpf"] for entry in trainer.state.log_history if "tpf" in entry]
    assert len(tpf_values) == 1 and tpf_values[0] >= 1.0
    after = {
        name.replace("base_model.model.", "").replace(".base_layer", ""): value
        for name, value in _parameters(trainer.model).items()
    }
    for name, value in base_before.items():
        torch.testing.assert_close(after[name], value, msg=name)
    adapters = [value for name, value in after.items() if "lora_B" in name]
    assert adapters and all(value.abs().sum() > 0 for value in adapters)
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in _step_logs(trainer))


def _divergence_from(model, base, rows) -> float:
    """Mean KL(base ‖ model) of the next-token distributions over the rows' full token sequences."""
    total = 0.0
    with torch.no_grad():
        for row in rows:
            tokens = torch.tensor([row["input_ids"]])
            base_log_probs = torch.log_softmax(base(tokens).logits[0], dim=-1)
            log_probs = torch.log_softmax(model(tokens).logits[0], dim=-1)
            total += float((base_log_probs.exp() * (base_log_probs - log_probs)).sum(-1).mean())
    return total / len(rows)


def test_base_kl_anchor_holds_the_model_near_its_base(tmp_path):
    """The same 12 steps with and without the anchor: with it the model ends much closer to the base model, the
    first step's KL is 0 (model = base) and the logged terms recombine into the loss."""
    rows = packed_rows(8)
    runs = {}
    for weight in (0.0, 10.0):
        trainer = make_trainer(
            tmp_path / str(weight), rows=rows, max_steps=12, ar_loss_weight=1.0, base_kl_weight=weight
        )
        base = build_tiny_model("llama")
        trainer.train()
        runs[weight] = (trainer, _divergence_from(trainer.model.eval(), base, rows))
    anchored, anchored_divergence = runs[10.0]
    _, free_divergence = runs[0.0]
    assert anchored_divergence < 0.5 * free_divergence
    _assert_same_parameters(anchored.base_parameters, _parameters(build_tiny_model("llama")))
    logs = _step_logs(anchored)
    assert logs[0]["base_kl"] == pytest.approx(0.0, abs=1e-6) and logs[-1]["base_kl"] > 0
    for entry in logs:
        expected = entry["ar_loss"] + entry["consistency_loss"] + 10.0 * entry["base_kl"]
        assert entry["loss"] == pytest.approx(expected, rel=1e-4)


def test_base_kl_anchor_of_a_lora_model_disables_the_adapters_instead_of_copying_weights(tmp_path):
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = JacobiForcingTrainer(
        build_tiny_model("llama").train(),
        args=fast_config(tmp_path, max_steps=6, base_kl_weight=1.0, learning_rate=2e-2),
        train_dataset=Dataset.from_list(packed_rows(6)),
        peft_config=lora,
    )
    assert trainer.base_parameters is None
    trainer.train()
    kl_values = [entry["base_kl"] for entry in _step_logs(trainer)]
    assert kl_values[0] == pytest.approx(0.0, abs=1e-6)  # LoRA starts as the identity
    assert kl_values[-1] > 1e-4


def test_an_explicit_kl_anchor_replaces_the_starting_model(tmp_path):
    """Training that continues from a trained checkpoint anchors to the original model: the frozen weights are the
    anchor's, so the first step's KL is already positive."""
    rows = packed_rows(6)
    original = build_tiny_model("llama", seed=0)
    continued = build_tiny_model("llama", seed=1)  # stands in for a model trained in an earlier round
    trainer = make_trainer(tmp_path, rows=rows, model=continued, max_steps=1, base_kl_weight=1.0, kl_anchor=original)
    _assert_same_parameters(trainer.base_parameters, _parameters(original))
    trainer.train()
    assert _step_logs(trainer)[0]["base_kl"] > 0.01  # without the anchor the first step's KL is 0 (see above)


def test_a_kl_anchor_that_cannot_serve_is_refused(tmp_path):
    other_architecture = build_tiny_model("qwen2")
    with pytest.raises(ValueError, match="does not match the trained model's parameters"):
        make_trainer(tmp_path, base_kl_weight=1.0, kl_anchor=other_architecture)
    with pytest.raises(ValueError, match="base_kl_weight is 0"):
        make_trainer(tmp_path, kl_anchor=build_tiny_model("llama"))


class _StopAt(TrainerCallback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_from_a_checkpoint_continues_the_uninterrupted_run(tmp_path):
    rows = packed_rows(12, seed=3)
    settings = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3, "train_sampling_strategy": "random"}
    uninterrupted = make_trainer(tmp_path / "full", rows=rows, **settings)
    uninterrupted.train()

    interrupted = make_trainer(tmp_path / "cut", rows=rows, **settings)
    interrupted.add_callback(_StopAt(3))
    interrupted.train()
    assert interrupted.state.global_step == 3
    resumed = make_trainer(tmp_path / "cut", rows=rows, **settings)
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-3"))

    full_losses = {entry["step"]: entry["loss"] for entry in _step_logs(uninterrupted)}
    resumed_losses = {entry["step"]: entry["loss"] for entry in _step_logs(resumed)}
    assert sorted(resumed_losses) == [1, 2, 3, 4, 5, 6]  # steps 1-3 come from the checkpoint's trainer state
    for step, loss in resumed_losses.items():
        assert loss == pytest.approx(full_losses[step], rel=1e-5)
    _assert_same_parameters(_parameters(uninterrupted.model), _parameters(resumed.model), rtol=1e-5, atol=1e-7)


def _tiny_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocabulary = {f"t{index}": index for index in range(VOCAB_SIZE)}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(vocabulary, unk_token="t2")),
        pad_token=f"t{PAD_TOKEN_ID}",
        eos_token=f"t{EOS_TOKEN_ID}",
        unk_token="t2",
    )


def test_tokenizer_is_optional_and_saved_when_given(tmp_path):
    without = make_trainer(tmp_path / "without", max_steps=1)
    assert without.processing_class is None
    without.train()
    without.save_model()
    assert not (tmp_path / "without" / "tokenizer.json").exists()

    tokenizer = _tiny_tokenizer()
    with_tokenizer = JacobiForcingTrainer(
        build_tiny_model("llama").train(),
        args=fast_config(tmp_path / "with", max_steps=1),
        train_dataset=Dataset.from_list(packed_rows(4)),
        processing_class=tokenizer,
    )
    assert with_tokenizer.data_collator.pad_token_id == tokenizer.pad_token_id
    assert with_tokenizer.data_collator.eos_token_id == tokenizer.eos_token_id
    with_tokenizer.train()
    with_tokenizer.save_model()
    assert (tmp_path / "with" / "tokenizer.json").exists()


def test_bad_data_and_settings_fail_before_training(tmp_path):
    rows = packed_rows(6)
    rows[5] = {"input_ids": rows[5]["input_ids"][:-1], "prompt_length": rows[5]["prompt_length"]}
    with pytest.raises(ValueError, match="train dataset: row 5: length"):
        make_trainer(tmp_path, rows=rows)
    with pytest.raises(ValueError, match="the data collator has block_size=3 but the config has block_size=4"):
        JacobiForcingTrainer(
            build_tiny_model("llama"),
            args=fast_config(tmp_path),
            data_collator=JacobiForcingDataCollator(block_size=3, pad_token_id=PAD_TOKEN_ID),
            train_dataset=Dataset.from_list(packed_rows(2)),
        )
    with pytest.raises(ValueError, match="attn_implementation='flex_attention' cannot apply the 4D"):
        make_trainer(tmp_path, model=build_tiny_model("llama", attn_implementation="flex_attention"))
    from trl import SFTConfig

    with pytest.raises(TypeError, match="args must be a JacobiForcingConfig"):
        JacobiForcingTrainer(
            build_tiny_model("llama"),
            args=SFTConfig(output_dir=str(tmp_path), bf16=False),
            train_dataset=Dataset.from_list(packed_rows(2)),
        )


def test_evaluation_reports_both_terms(tmp_path):
    trainer = make_trainer(tmp_path)
    metrics = trainer.evaluate(Dataset.from_list(packed_rows(4, seed=5)))
    assert metrics["eval_loss"] == pytest.approx(10 * metrics["eval_ar_loss"] + metrics["eval_consistency_loss"])


def test_tpf_is_measured_and_logged_during_training(tmp_path):
    eval_rows = packed_rows(3, seed=7)
    trainer = JacobiForcingTrainer(
        build_tiny_model("llama").train(),
        args=fast_config(tmp_path, max_steps=4, tpf_eval_steps=2, tpf_num_prompts=2, tpf_max_new_tokens=12),
        train_dataset=Dataset.from_list(packed_rows(8)),
        eval_dataset=Dataset.from_list(eval_rows),
    )
    trainer.train()
    tpf_logs = [entry for entry in trainer.state.log_history if "tpf" in entry]
    assert [entry["step"] for entry in tpf_logs] == [2, 4]
    assert all(entry["tpf"] >= 1.0 for entry in tpf_logs)  # a Jacobi forward commits at least one token
    assert len(_step_logs(trainer)) == 4 and all("ar_loss" in entry for entry in _step_logs(trainer))
    assert trainer.model.training

    callback = next(item for item in trainer.callback_handler.callbacks if isinstance(item, TPFCallback))
    assert callback.prompts == [row["input_ids"][: row["prompt_length"]] for row in eval_rows[:2]]
    model = trainer.model.eval()
    input_ids, attention_mask = callback.left_padded_batch(torch.device("cpu"))
    direct = model.generate(
        input_ids, attention_mask=attention_mask, max_new_tokens=12, do_sample=False, pad_token_id=PAD_TOKEN_ID
    )
    jacobi = model.generate(
        input_ids,
        attention_mask=attention_mask,
        max_new_tokens=12,
        do_sample=False,
        pad_token_id=PAD_TOKEN_ID,
        custom_generate=jf.jacobi_generate,
        decoding="jacobi",
        block_size=4,
    )
    assert torch.equal(direct, jacobi)  # the measured decoding is the lossless one
    assert callback.measure(model) == pytest.approx(model.jacobi_stats.tpf)
    assert tpf_logs[-1]["tpf"] == pytest.approx(model.jacobi_stats.tpf)
