"""The trainer's loss equals an independent restatement of REFERENCE §4.5-4.8, and the 4D mask is right for every
architecture: the masked forward reproduces ordinary causal forwards of each stream."""

from __future__ import annotations

import pytest
import torch
from trainer_testing import (
    BLOCK_SIZE,
    flatten,
    make_trainer,
    packed_row,
    packed_rows,
    reference_row_losses,
    single_thread,  # noqa: F401 (autouse fixture)
    split_row,
)

from jacobi_forcing_hf import JacobiForcingDataCollator
from tiny_models import EOS_TOKEN_ID, PAD_TOKEN_ID, build_tiny_model

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _batch(trainer, rows):
    return trainer.data_collator(rows)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_loss_at_batch_one_is_the_reference_loss(arch, tmp_path):
    model = build_tiny_model(arch)
    trainer = make_trainer(tmp_path, model=model)
    for row in (packed_row(5, 3, seed=1), packed_row(7, 2, seed=2, eos_at=1)):
        ar, consistency = reference_row_losses(model, row)
        with torch.no_grad():
            loss = trainer.compute_loss(model, _batch(trainer, [row]))
        assert consistency > 0
        torch.testing.assert_close(loss, 10 * ar + consistency, **TOLERANCE)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_padded_batch_gives_each_row_its_own_loss(arch, tmp_path):
    model = build_tiny_model(arch)
    trainer = make_trainer(tmp_path, model=model)
    rows = [packed_row(4, 1, seed=3), packed_row(9, 3, seed=4, eos_at=2), packed_row(6, 2, seed=5)]
    batch = _batch(trainer, rows)
    with torch.no_grad():
        full_logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits
        _, losses = trainer.forward_losses(model, batch)
        batch_loss = trainer.compute_loss(model, batch)
    assert torch.isfinite(full_logits).all(), "padded positions must not produce NaN logits"
    for index, row in enumerate(rows):
        ar, consistency = reference_row_losses(model, row)
        torch.testing.assert_close(losses.ar[index], ar, **TOLERANCE)
        torch.testing.assert_close(losses.consistency[index], consistency, **TOLERANCE)
        with torch.no_grad():
            alone = trainer.compute_loss(model, _batch(trainer, [row]))
        torch.testing.assert_close(losses.total[index], alone, **TOLERANCE)
    torch.testing.assert_close(batch_loss, losses.total.mean())


VARIANTS = [
    {"attention_context": "clean"},
    {"include_prompt_in_ar": False, "keep_last_offset": False},
    {"consistency_target": "hard", "consistency_normalization": "mean"},
    {"distill_temperature": 2.0, "ar_loss_weight": 1.0, "consistency_loss_weight": 3.0},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: ",".join(variant))
def test_options_follow_their_definition(variant, tmp_path, llama_tiny):
    trainer = make_trainer(tmp_path, model=llama_tiny, **variant)
    oracle_options = {
        key: value
        for key, value in variant.items()
        if key not in ("distill_temperature", "ar_loss_weight", "consistency_loss_weight")
    }
    temperature = variant.get("distill_temperature", 1.0)
    rows = [packed_row(6, 3, seed=6, eos_at=3), packed_row(5, 2, seed=7)]
    with torch.no_grad():
        _, losses = trainer.forward_losses(llama_tiny, _batch(trainer, rows))
    for index, row in enumerate(rows):
        ar, consistency = reference_row_losses(llama_tiny, row, temperature=temperature, **oracle_options)
        expected = variant.get("ar_loss_weight", 10.0) * ar + variant.get("consistency_loss_weight", 1.0) * consistency
        torch.testing.assert_close(losses.total[index], expected, **TOLERANCE)


def test_pad_equal_to_eos_still_trains_the_eos_target(tmp_path, llama_tiny):
    """With pad == eos (SmolLM2's case) the EOS target stays in the AR loss; only post-EOS positions are dropped."""
    trainer = make_trainer(tmp_path, model=llama_tiny)
    trainer.data_collator.pad_token_id = EOS_TOKEN_ID
    row = packed_row(6, 2, seed=8, eos_at=1)
    with torch.no_grad():
        _, losses = trainer.forward_losses(llama_tiny, _batch(trainer, [row]))
    ar, consistency = reference_row_losses(llama_tiny, row, pad=EOS_TOKEN_ID, eos=EOS_TOKEN_ID)
    torch.testing.assert_close(losses.ar[0], ar, **TOLERANCE)
    torch.testing.assert_close(losses.consistency[0], consistency, **TOLERANCE)
    batch = _batch(trainer, [row])
    assert EOS_TOKEN_ID in batch["input_ids"].flatten()[batch["ar_target_index"]]


def test_logits_are_computed_only_where_the_losses_read(tmp_path, llama_tiny):
    trainer = make_trainer(tmp_path, model=llama_tiny)
    batch = _batch(trainer, packed_rows(3))
    with torch.no_grad():
        outputs, _ = trainer.forward_losses(llama_tiny, batch)
    used = set()
    for key in ("ar_logit_index", "consistency_student_index", "consistency_teacher_index"):
        used |= set(batch[key].tolist())
    assert outputs.logits.shape == (len(used), llama_tiny.config.vocab_size)
    assert len(used) < batch["input_ids"].numel()


def test_gradient_flows_to_the_student_only(tmp_path, llama_tiny):
    """The teacher logits are detached: the consistency loss has no gradient through the clean positions."""
    trainer = make_trainer(tmp_path, model=llama_tiny, ar_loss_weight=0.0)
    row = packed_row(5, 2, seed=9)
    batch = _batch(trainer, [row])
    embeddings = llama_tiny.get_input_embeddings()
    captured = {}

    def keep_grad(module, args, output):
        output.retain_grad()
        captured["embeddings"] = output

    handle = embeddings.register_forward_hook(keep_grad)
    try:
        trainer.compute_loss(llama_tiny, batch).backward()
    finally:
        handle.remove()
        llama_tiny.zero_grad()
    grad = captured["embeddings"].grad[0].abs().sum(-1)
    prompt_length, n = row["prompt_length"], BLOCK_SIZE
    clean_positions = [prompt_length + (2 * j + 1) * n + t for j in range(2) for t in range(n)]
    noisy_positions = [prompt_length + 2 * j * n + t for j in range(2) for t in range(n)]
    assert grad[clean_positions].max() == 0
    assert grad[noisy_positions].max() > 0


@pytest.mark.parametrize("attention_context", ["noisy", "clean"])
def test_masked_forward_equals_causal_forwards_of_each_stream(tiny_model, attention_context):
    """For every architecture: the clean stream of one masked forward equals a causal forward over
    prompt ‖ L_0 ‖ … and each noisy block equals a causal forward over its own context."""
    _check_streams(tiny_model, attention_context)


def test_eager_attention_applies_the_additive_mask_too():
    _check_streams(build_tiny_model("qwen2", attn_implementation="eager"), "noisy")


def _check_streams(tiny_model, attention_context: str) -> None:
    row = packed_row(5, 3, seed=10)
    n = BLOCK_SIZE
    collator = JacobiForcingDataCollator(block_size=n, pad_token_id=PAD_TOKEN_ID, attention_context=attention_context)
    batch = collator([row, packed_row(4, 1, seed=11)])  # a second, shorter row pads the first batch row's partner
    with torch.no_grad():
        masked = tiny_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
        ).logits[0]
        prompt, noisy, clean = split_row(row, n)
        clean_logits = tiny_model(torch.tensor([prompt + flatten(clean)])).logits[0]
        noisy_contexts = [
            prompt + flatten(noisy[: j + 1]) if attention_context == "noisy" else prompt + flatten(clean[:j]) + noisy[j]
            for j in range(3)
        ]
        noisy_logits = [tiny_model(torch.tensor([context])).logits[0, -n:] for context in noisy_contexts]
    P = len(prompt)
    torch.testing.assert_close(masked[:P], clean_logits[:P], **TOLERANCE)
    for j in range(3):
        torch.testing.assert_close(
            masked[P + (2 * j + 1) * n :][:n], clean_logits[P + j * n :][:n], **TOLERANCE, msg=f"L_{j}"
        )
        torch.testing.assert_close(masked[P + 2 * j * n :][:n], noisy_logits[j], **TOLERANCE, msg=f"K_{j}")


def test_base_kl_is_the_divergence_from_the_frozen_copy_on_the_clean_stream(tmp_path):
    """base_kl of a row = mean KL(base ‖ model) over every next-token pair of ``prompt ‖ L_0 ‖ …`` (no EOS, prompt
    in the AR loss: the AR pairs are all of them), from plain causal forwards; the frozen weights do not move with
    the model's."""
    model, base = build_tiny_model("llama"), build_tiny_model("llama")
    trainer = make_trainer(tmp_path, model=model, base_kl_weight=0.5)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    rows = [packed_row(6, 3, seed=10), packed_row(4, 1, seed=11)]
    with torch.no_grad():
        _, losses = trainer.forward_losses(model, _batch(trainer, rows))
    for index, row in enumerate(rows):
        prompt, _, clean = split_row(row, BLOCK_SIZE)
        tokens = torch.tensor([prompt + flatten(clean)])
        with torch.no_grad():
            base_log_probs = torch.log_softmax(base(tokens).logits[0, :-1].float(), dim=-1)
            log_probs = torch.log_softmax(model(tokens).logits[0, :-1].float(), dim=-1)
        expected = (base_log_probs.exp() * (base_log_probs - log_probs)).sum(-1).mean()
        assert expected > 1e-3
        torch.testing.assert_close(losses.base_kl[index], expected, **TOLERANCE)
        ar, consistency = reference_row_losses(model, row)
        torch.testing.assert_close(losses.total[index], 10 * ar + consistency + 0.5 * expected, **TOLERANCE)


def test_base_kl_is_off_by_default(tmp_path, llama_tiny):
    trainer = make_trainer(tmp_path, model=llama_tiny)
    assert trainer.base_parameters is None
    with torch.no_grad():
        _, losses = trainer.forward_losses(llama_tiny, _batch(trainer, packed_rows(2)))
    assert losses.base_kl.abs().sum() == 0
