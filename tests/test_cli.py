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
        assert name in out


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
    assert "jacobi_mr tokens identical to greedy: True" in out
    kernels = "oneDNN" if torch.backends.mkldnn.is_available() else "PyTorch's default"
    assert f"{kernels} linear kernels for both methods" in out
    rows = {match[1]: (int(match[2]), int(match[3])) for match in re.finditer(r"^(\w+) +(\d+) +(\d+) ", out, re.M)}
    (greedy_tokens, greedy_forwards), (jacobi_tokens, jacobi_forwards) = rows["greedy"], rows["jacobi_mr"]
    assert greedy_tokens == jacobi_tokens == 24 and greedy_forwards == 24
    assert jacobi_forwards < greedy_forwards
