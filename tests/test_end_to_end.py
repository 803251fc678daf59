"""Controlled end-to-end demonstration: the whole recipe measurably raises greedy Jacobi TPF on held-out data.

AR pretraining (plain causal LM loss) → ``collect_trajectories`` → ``build_training_sequences`` →
``JacobiForcingTrainer`` → greedy Jacobi TPF on held-out sequences, on the synthetic copy corpus of
``tests/copy_task.py`` (why it shows the effect is explained there and in docs/end_to_end.md). The same pipeline with
the consistency loss switched off is the control: it must not give the rise. About a minute on 2 cores.
"""

from __future__ import annotations

import copy

import pytest
import torch

import jacobi_forcing_hf as jf
from copy_task import (
    ar_pretrain,
    build_char_tokenizer,
    build_copy_model,
    collect_and_pack,
    copy_prompts,
    jacobi_copy_score,
    jacobi_forcing,
)

HELD_OUT = copy_prompts(32, seed=10_000)
TRAIN_PROMPTS = copy_prompts(1024, seed=1)


@pytest.fixture(scope="module")
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread, the more so on a shared machine
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pretrained(single_thread):
    """The AR-pretrained copy model, its tokenizer and its packed Jacobi Forcing rows (own trajectories)."""
    tokenizer = build_char_tokenizer()
    model = ar_pretrain(build_copy_model(), tokenizer)
    packed = collect_and_pack(model, tokenizer, TRAIN_PROMPTS)
    return model, tokenizer, packed


@pytest.mark.slow  # the module's AR pretraining and trainings: about a minute on 2 idle cores
def test_ar_pretraining_learns_to_copy_but_jacobi_decoding_gains_nothing(pretrained):
    model, tokenizer, _ = pretrained
    tpf, exact = jacobi_copy_score(model, tokenizer, HELD_OUT)
    assert exact >= 0.9, f"AR pretraining did not learn to copy ({exact:.2f} exact copies)"
    assert tpf < 1.3, f"an induction-style copier should accept about one token per forward, got TPF {tpf:.2f}"


@pytest.mark.slow  # the module's AR pretraining and trainings: about a minute on 2 idle cores
def test_jacobi_forcing_raises_tpf_on_held_out_copies_and_keeps_them_correct(pretrained, tmp_path):
    model, tokenizer, packed = pretrained
    tpf_before, _ = jacobi_copy_score(model, tokenizer, HELD_OUT)
    trained, trainer = jacobi_forcing(model, tokenizer, packed, tmp_path)
    tpf_after, exact_after = jacobi_copy_score(trained, tokenizer, HELD_OUT)
    losses = [entry for entry in trainer.state.log_history if "consistency_loss" in entry]
    assert losses[-1]["consistency_loss"] < 0.5 * losses[0]["consistency_loss"]
    # n = 8, 16 new tokens: at most 16 / 3 = 5.33 (the prefill gives the first token, then 2 forwards per block)
    assert tpf_after >= 3.0 and tpf_after >= 2.5 * tpf_before, f"TPF {tpf_before:.2f} -> {tpf_after:.2f}"
    assert exact_after >= 0.9, f"Jacobi Forcing broke the copies: {exact_after:.2f} exact"


@pytest.mark.slow  # the module's AR pretraining and trainings: about a minute on 2 idle cores
def test_without_the_consistency_loss_the_same_pipeline_gives_no_rise(pretrained, tmp_path):
    model, tokenizer, packed = pretrained
    trained, _ = jacobi_forcing(model, tokenizer, packed, tmp_path, consistency_loss_weight=0.0)
    tpf_after, exact_after = jacobi_copy_score(trained, tokenizer, HELD_OUT)
    assert exact_after >= 0.9
    assert tpf_after < 1.5, f"AR training alone raised TPF to {tpf_after:.2f}: the demonstration proves nothing"


def test_tpf_callback_decodes_a_jacobi_enabled_model(llama_tiny):
    """The TPF measurement works on models already enabled for Jacobi decoding (as load_default_model returns)."""
    model = jf.enable_jacobi(copy.deepcopy(llama_tiny))
    callback = jf.TPFCallback(trainer=None, prompts=[[5, 6, 7], [8, 9]], block_size=4, max_new_tokens=8)
    assert callback.measure(model) >= 1.0


@pytest.mark.parametrize("draft_init", [None, "repeat_last", "random_context"])
def test_tpf_callback_decodes_with_the_given_draft_init(llama_tiny, draft_init):
    """A model trained on repeat_last trajectories is measured with the drafts it was trained on."""
    model = jf.enable_jacobi(copy.deepcopy(llama_tiny))
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    callback = jf.TPFCallback(
        trainer=None, prompts=prompts, block_size=8, max_new_tokens=32, pad_token_id=0, draft_init=draft_init
    )
    tpf = callback.measure(model)
    input_ids, attention_mask = callback.left_padded_batch(torch.device("cpu"))
    knobs = {"draft_init": draft_init} if draft_init else {}
    with torch.no_grad():
        model.generate(
            input_ids,
            attention_mask=attention_mask,
            max_new_tokens=32,
            do_sample=False,
            pad_token_id=0,
            decoding="jacobi",
            block_size=8,
            **knobs,
        )
    assert tpf == model.jacobi_stats.tpf
