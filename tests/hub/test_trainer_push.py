"""``JacobiForcingTrainer.push_to_hub``: the trained checkpoint lands ready for Jacobi decoding, in one upload."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from datasets import Dataset
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM

import jacobi_forcing_hf as jf
from jacobi_forcing_hf import JacobiForcingTrainer
from tiny_models import build_tiny_model, random_prompts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from trainer_testing import BLOCK_SIZE, fast_config, packed_rows


def test_trainer_push_to_hub_shares_a_jacobi_ready_checkpoint(fake_hub, tmp_path):
    args = fast_config(tmp_path / "run", max_steps=1, hub_model_id="tester/trained")
    trainer = JacobiForcingTrainer(
        build_tiny_model("llama").train(), args=args, train_dataset=Dataset.from_list(packed_rows(4))
    )
    trainer.train()
    trainer.push_to_hub(dataset_name="tester/jacobi-data")

    repo_files = set(fake_hub.repo("tester/trained").head("main").files)
    assert {"model.safetensors", "generation_config.json", "README.md", "custom_generate/generate.py"} <= repo_files
    assert fake_hub.commit_count("tester/trained") == 2  # created, then one upload of the whole folder
    card = ModelCard(fake_hub.file_content("tester/trained", "README.md").decode())
    assert {"trl", "jacobi-forcing", "custom_generate"} <= set(card.data.tags)
    assert card.data.datasets == ["tester/jacobi-data"]
    assert card.data["jacobi_forcing"]["training"]["block_size"] == BLOCK_SIZE

    reloaded = AutoModelForCausalLM.from_pretrained("tester/trained", cache_dir=tmp_path / "cache")
    assert reloaded.generation_config.block_size == BLOCK_SIZE
    assert reloaded.generation_config.decoding == "jacobi_mr"
    prompt = random_prompts(1, 6)
    mask = torch.ones_like(prompt)
    greedy = trainer.model.eval().generate(prompt, attention_mask=mask, max_new_tokens=12, do_sample=False)
    assert torch.equal(jf.enable_jacobi(reloaded).generate(prompt, attention_mask=mask, max_new_tokens=12), greedy)
