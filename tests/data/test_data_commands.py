"""`jacobi-forcing collect` and `jacobi-forcing pack` end to end on a tiny model; the packed-sequence picture."""

from __future__ import annotations

import json

import datasets
import pytest
from char_tokenizer import build_char_tokenizer

from jacobi_forcing_hf.cli import main
from jacobi_forcing_hf.data.figures import plot_packed_sequence
from jacobi_forcing_hf.trajectories import load_trajectories
from tiny_models import build_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_model("llama").save_pretrained(directory)
    build_char_tokenizer().save_pretrained(directory)
    return directory


def test_collect_then_pack_write_datasets_folders(model_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"messages": [{"role": "user", "content": t}]}) + "\n" for t in "abc"))
    collected, packed = tmp_path / "trajectories", tmp_path / "packed"
    arguments = ["--model", str(model_dir), "--prompts", str(prompts), "--output-dir", str(collected)]
    sizes = ["--block-size", "4", "--max-new-tokens", "8", "--batch-size", "2"]
    assert main(["collect", *arguments, *sizes]) == 0
    assert "6 block trajectories of 3 prompts" in capsys.readouterr().out
    trajectories = datasets.load_from_disk(str(collected))
    assert trajectories.to_list() == load_trajectories(collected).to_list()

    export = ["--jsonl", str(tmp_path / "packed.jsonl"), "--parquet", str(tmp_path / "packed.parquet")]
    assert main(["pack", str(collected), "--output-dir", str(packed), "--window-size", "4", *export]) == 0
    assert "3 training sequences of block size 4" in capsys.readouterr().out
    sequences = datasets.load_from_disk(str(packed))
    assert sequences["prompt_id"] == [0, 1, 2]
    assert all(len(ids) == p + 2 * 2 * 4 for ids, p in zip(sequences["input_ids"], sequences["prompt_length"]))
    lines = (tmp_path / "packed.jsonl").read_text().splitlines()
    assert [json.loads(line)["input_ids"] for line in lines] == sequences["input_ids"]
    assert datasets.Dataset.from_parquet(str(tmp_path / "packed.parquet"))["input_ids"] == sequences["input_ids"]

    # bad input: a clear message and exit status 2, nothing written
    assert main(["collect", *arguments, "--block-size", "8", "--max-new-tokens", "8", "--batch-size", "2"]) == 2
    assert "block_size: 4 there, 8 now" in capsys.readouterr().err
    assert main(["pack", str(collected), "--output-dir", str(tmp_path / "bad"), "--block-size", "8"]) == 2
    assert "the trajectories have block size 4" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_picture_of_a_packed_sequence_is_a_png(tmp_path):
    row = {
        "prompt_id": 3,
        "input_ids": list(range(5 + 2 * 3 * 4)),
        "prompt_length": 5,
        "num_blocks": 3,
        "block_size": 4,
        "noisy_ratios": [0.0, 0.5, 1.0],
    }
    path = plot_packed_sequence(row, tmp_path / "figure" / "packed.png", target_ratios=[0.0, 0.5, 1.0])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
