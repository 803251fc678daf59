"""``jacobi-forcing push``: once for real in a subprocess against the double served on 127.0.0.1, plus exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
from fake_hub import serve
from sample_models import tiny_tokenizer
from transformers import AutoModelForCausalLM

import jacobi_forcing_hf
from jacobi_forcing_hf.cli import main
from tiny_models import build_tiny_model

SRC = Path(jacobi_forcing_hf.__file__).resolve().parents[1]


def _cli(endpoint: str, token: str, home: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "jacobi_forcing_hf.cli", "push", *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_cli_pushes_data_and_a_checkpoint_to_a_served_hub(fake_hub, trajectories, tmp_path):
    trajectories.save_to_disk(str(tmp_path / "trajectories"))
    checkpoint = tmp_path / "checkpoint"
    model = build_tiny_model("llama")
    model.save_pretrained(checkpoint)
    tiny_tokenizer().save_pretrained(checkpoint)
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"humaneval": {"tpf": 1.8}}))

    with serve(fake_hub, max_lifetime_s=600) as endpoint:
        data_run = _cli(
            endpoint, fake_hub.token, tmp_path / "home",
            "dataset", str(tmp_path / "trajectories"), "tester/cli-data", "--prompt-license", "mit",
        )  # fmt: skip
        model_run = _cli(
            endpoint, fake_hub.token, tmp_path / "home",
            "checkpoint", str(checkpoint), "tester/cli-model", "--block-size", "8", "--results", str(results),
        )  # fmt: skip
    assert data_run.returncode == 0, data_run.stderr
    assert model_run.returncode == 0, model_run.stderr
    assert f"{endpoint}/datasets/tester/cli-data/commit/" in data_run.stdout
    assert fake_hub.commit_count("tester/cli-data", "dataset") == 2
    assert fake_hub.commit_count("tester/cli-model") == 2

    # read back in-process, through the same Hub
    loaded = datasets.load_dataset("tester/cli-data", "trajectories", split="train", cache_dir=str(tmp_path / "c"))
    assert loaded.to_dict() == trajectories.to_dict()
    reloaded = AutoModelForCausalLM.from_pretrained("tester/cli-model", cache_dir=tmp_path / "c")
    assert reloaded.generation_config.block_size == 8
    assert "custom_generate/generate.py" in fake_hub.repo("tester/cli-model").head("main").files


def test_cli_refuses_data_that_is_not_ours_with_exit_code_2(fake_hub, tmp_path, capsys):
    datasets.Dataset.from_dict({"text": ["a"]}).save_to_disk(str(tmp_path / "foreign"))
    assert main(["push", "dataset", str(tmp_path / "foreign"), "tester/x"]) == 2
    assert "lacks columns" in capsys.readouterr().err
    assert main(["push", "dataset", str(tmp_path / "missing"), "tester/x"]) == 2
    assert "is not a dataset saved with save_to_disk" in capsys.readouterr().err
    assert fake_hub.requests == []


def test_cli_refuses_a_checkpoint_without_generation_config(fake_hub, tmp_path, capsys):
    checkpoint = tmp_path / "checkpoint"
    build_tiny_model("llama").save_pretrained(checkpoint)
    (checkpoint / "generation_config.json").unlink()
    assert main(["push", "checkpoint", str(checkpoint), "tester/x"]) == 2
    assert "has no generation_config.json" in capsys.readouterr().err
    assert fake_hub.requests == []


def test_cli_reports_a_failed_commit_with_exit_code_1(fake_hub, trajectories, tmp_path, capsys):
    trajectories.save_to_disk(str(tmp_path / "trajectories"))
    fake_hub.fail_commits_with = 500
    assert main(["push", "dataset", str(tmp_path / "trajectories"), "tester/x"]) == 1
    assert "the repo is unchanged" in capsys.readouterr().err
    assert "README.md" not in fake_hub.repo("tester/x", "dataset").head("main").files
