"""The ``jacobi-forcing`` command line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import jacobi_forcing_hf
from jacobi_forcing_hf.cli import COMMAND_MODULES, main


def test_help_lists_every_subcommand(capsys):
    try:
        main(["--help"])
    except SystemExit as exit_:
        assert exit_.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        assert name.replace("_", "-") in out  # module extract_lora is the command extract-lora


def test_console_script_answers_version():
    result = subprocess.run(
        [sys.executable, "-m", "jacobi_forcing_hf.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert jacobi_forcing_hf.__version__ in result.stdout


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_decodes_the_same_tokens_in_fewer_forwards(capsys):
    assert main(["demo", "--max-new-tokens", "24"]) == 0
    out = capsys.readouterr().out
    assert "jacobi_mr tokens identical to jacobi-forcing greedy: True" in out
    assert "jacobi-forcing jacobi_mr: " in out and "x the tokens/s of base greedy" in out
    kernels = "oneDNN" if torch.backends.mkldnn.is_available() else "PyTorch's default"
    assert f"{kernels} linear kernels for every run" in out
    assert "n-gram table from the generation config: " in out and "ngram_table.json" in out
    rows = {
        (match[1], match[2]): (int(match[3]), int(match[4]))
        for match in re.finditer(r"^([\w-]+) +(\w+) +(\d+) +(\d+) ", out, re.M)
    }
    assert rows[("base", "greedy")] == rows[("jacobi-forcing", "greedy")] == (24, 24)
    jacobi_tokens, jacobi_forwards = rows[("jacobi-forcing", "jacobi_mr")]
    assert jacobi_tokens == 24 and jacobi_forwards < 24


@pytest.mark.slow
def test_demo_of_the_base_model_compares_it_with_its_own_greedy(capsys):
    assert main(["demo", "--model", "base", "--max-new-tokens", "16", "--decoding", "jacobi"]) == 0
    out = capsys.readouterr().out
    assert "jacobi tokens identical to base greedy: True" in out
    assert re.findall(r"^([\w-]+) +(\w+) +\d+", out, re.M) == [("base", "greedy"), ("base", "jacobi")]
