"""The real data pipeline end to end: collect_trajectories and build_training_sequences, pushed and loaded back."""

from __future__ import annotations

import datasets
from huggingface_hub import DatasetCard
from sample_models import tiny_tokenizer

import jacobi_forcing_hf as jf
from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.hub import push_training_data
from tiny_models import build_tiny_model

REPO = "tester/collected"
PROMPTS = {"prompt": ["t5 t9 t17", "t33 t40", "t64 t70 t80 t90", "t100 t101"]}


def _collect(output_dir):
    return jf.collect_trajectories(
        build_tiny_model("llama"),
        tiny_tokenizer(),
        datasets.Dataset.from_dict(PROMPTS),
        block_size=4,
        max_new_tokens=8,
        batch_size=2,
        output_dir=output_dir,
        progress=False,
    )


def test_collected_and_packed_data_push_and_load_back_exactly(fake_hub, tmp_path):
    trajectories = _collect(tmp_path / "trajectories")
    assert main(["push", "dataset", str(tmp_path / "trajectories"), REPO, "--prompt-license", "mit"]) == 0
    packed = jf.build_training_sequences(trajectories, block_size=4, window_size=4, strategy="progressive")
    push_training_data(packed, REPO, window=4, noise_schedule="progressive")

    cache = str(tmp_path / "cache")
    loaded_trajectories = datasets.load_dataset(REPO, "trajectories", split="train", cache_dir=cache)
    loaded_packed = datasets.load_dataset(REPO, "training_data", split="train", cache_dir=cache)
    assert loaded_trajectories.features == trajectories.features  # int32 columns stay int32
    assert loaded_trajectories.to_dict() == trajectories.to_dict()
    assert loaded_packed.features == packed.features
    assert loaded_packed.to_dict() == packed.to_dict()

    facts = DatasetCard(fake_hub.file_content(REPO, "README.md", "dataset").decode()).data["jacobi_forcing"]
    # what the collection's manifest recorded reached the card through the CLI
    assert facts["trajectories"]["max_new_tokens"] == 8
    assert facts["trajectories"]["draft_init"] == "random_context"
    assert facts["trajectories"]["block_size"] == 4
    assert facts["trajectories"]["prompts"] == len(PROMPTS["prompt"])
    assert facts["training_data"]["rows"] == len(packed)


def test_an_incomplete_collection_is_refused(fake_hub, tmp_path, capsys):
    _collect(tmp_path / "trajectories")
    next((tmp_path / "trajectories" / "shards").glob("*.parquet")).unlink()
    assert main(["push", "dataset", str(tmp_path / "trajectories"), REPO]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert fake_hub.requests == []
