"""The data half feeds the training half: trajectories collected from a tiny model, packed by
``build_training_sequences``, train with ``JacobiForcingTrainer`` without any adaptation."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import torch
from trainer_testing import (
    fast_config,
    single_thread,  # noqa: F401 (autouse fixture)
)

from jacobi_forcing_hf import JacobiForcingTrainer, TPFCallback
from jacobi_forcing_hf.data.packing import build_training_sequences
from jacobi_forcing_hf.trajectories import collect_trajectories
from tiny_models import build_tiny_model

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))

from char_tokenizer import build_char_tokenizer

PROMPTS = ["def add(a, b):", "hello there", "x = [1, 2, 3]", "class A:", "import os", "for i in range(3):"]


def test_collected_and_packed_trajectories_train(tmp_path):
    model, tokenizer = build_tiny_model("llama"), build_char_tokenizer()
    trajectories = collect_trajectories(
        model,
        tokenizer,
        datasets.Dataset.from_dict({"prompt": PROMPTS}),
        block_size=4,
        max_new_tokens=12,
        batch_size=3,
        progress=False,
    )
    packed = build_training_sequences(trajectories, block_size=4, window_size=3)
    assert len(packed) == len(PROMPTS) and set(packed["block_size"]) == {4}
    trainer = JacobiForcingTrainer(
        model.train(),
        args=fast_config(tmp_path, max_steps=4, tpf_eval_steps=4, tpf_num_prompts=2, tpf_max_new_tokens=8),
        train_dataset=packed,
        eval_dataset=packed,
        processing_class=tokenizer,
    )
    batch = trainer.data_collator([packed[index] for index in range(2)])
    # the model's own fixed points differ from their initial drafts: the consistency loss has work to do
    assert len(batch["consistency_student_index"]) > 0
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert any("tpf" in entry for entry in trainer.state.log_history)
    assert any(isinstance(callback, TPFCallback) for callback in trainer.callback_handler.callbacks)
